"""Finding the policy that runs a tier: backends are plugins.

The engine never imports ``agents``; a backend name from the scenario
(``offline``, ``anthropic``, ...) is looked up among the ``market.backends``
entry points, or given as a dotted path ``package.module:factory`` (imported
like ``python -m`` would: from the current folder too). A factory is called as
``factory(tier, settings, context)`` and returns a policy: a ``Policy``, or any
object with ``decide(observation) -> Decision`` (the declared ``Decides``
protocol), which :func:`as_policy` wraps in a :class:`PlainPolicy`. Anything
else is refused when the run is planned, before anything is written.
"""

from __future__ import annotations

import errno
import importlib
import inspect
import os
import sqlite3
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, runtime_checkable

from market.observation import Decision, Observation
from market.scenario import Scenario, TierSettings, quoted

ENTRY_POINT_GROUP = "market.backends"
# Used when the distribution's entry points are not installed (running from a checkout).
_BUILTIN = {"offline": "agents.offline:build_policy"}


class AgentFailure(Exception):
    """One trader's turn failed (a 400 for its conversation, an unrepairable tool call,
    hostile JSON, an exception in a custom policy, a result that is not a Decision).

    It costs that trader its turn, never the week: the engine records it as an
    ``agent_failed`` event (trader, tier, ``kind``, short ``reason``) and the trader passes.
    ``kind`` is a short stable code (``bad_request``, ``unrepairable_tool_call``,
    ``cut_off``, ``hostile_json``, ``policy_error``, ``not_a_decision``, ``context_too_long``...).
    """

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(f"{kind}: {reason}")
        self.kind = kind
        self.reason = reason[:500]


class FatalPolicyError(Exception):
    """A failure of the account or the run (key, permission, quota, unknown model, a cost cap):
    no later call can succeed. The run stops cleanly after the current batch (resumable)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Policy:
    """The port every backend implements: turns observations into decisions.

    Declared, not probed (like httpx's ``BaseTransport``): every method has a
    default, a backend overrides what it needs. ``decide`` is the one method a
    policy must provide; an object that is no ``Policy`` but has ``decide``
    (:class:`Decides`) gets the rest from :class:`PlainPolicy`. ``decide_batch`` may answer a batch concurrently; a
    failure that belongs to one trader is an ``AgentFailure`` *in its slot* of the
    result (or raised by ``decide``); a ``FatalPolicyError`` raised from either stops the run.
    """

    listings_per_want: int = 12
    """How many open listings per open want (the newest first) its observations show."""

    def decide(self, observation: Observation) -> Decision:
        """One trader's decision for one turn: the actions (in order) its ``observation`` leads to.

        Raises ``AgentFailure`` to cost this trader its turn (recorded as ``agent_failed``), ``FatalPolicyError``
        to stop the run after the current batch; the default raises ``NotImplementedError``."""
        raise NotImplementedError

    def decide_batch(self, observations: Sequence[Observation]) -> list[Decision | AgentFailure]:
        """One answer per observation, in the batch's order: a ``Decision``, or the ``AgentFailure`` of that
        trader's turn. The default calls ``decide`` once per observation, catching each trader's own exception as
        its ``AgentFailure``; a ``FatalPolicyError``, ``BackendError``, full disk or ``MemoryError`` propagates."""
        return [_guarded(self.decide, o) for o in observations]

    def open_run(self, run_dir: Path) -> None:
        """Called once with the run folder before the first turn (e.g. to know where model calls are recorded);
        does nothing by default."""

    def close(self) -> None:
        """Release clients and loops; called once after the run and its after-run steps, also when it failed or
        stopped early. Must be safe to call twice; does nothing by default."""

    def summary(self) -> dict[str, Any]:
        """Sections this backend adds to summary.json, by section name (tokens, cost, faults), read when the run
        ends or stops and summary.json is written; empty by default."""
        return {}

    def cost_usd(self) -> float | None:
        """Dollars spent so far on model calls (the cost cap reads it after each batch); None, the default, for a
        policy that calls no model."""
        return None


@runtime_checkable
class Decides(Protocol):
    """The least a policy is: anything with ``decide(observation) -> Decision`` (no ``Policy`` base needed)."""

    def decide(self, observation: Observation) -> Decision:
        """One trader's decision for one turn."""
        ...


class PlainPolicy(Policy):
    """A :class:`Decides` object as a ``Policy``: its ``decide``, and the ``Policy`` defaults for the rest
    (one ``decide`` after another per batch, no run folder, nothing to close, no summary, no model cost).
    To change those, subclass ``Policy`` instead."""

    def __init__(self, inner: Decides) -> None:
        self.inner = inner

    def decide(self, observation: Observation) -> Decision:
        """The wrapped object's decision."""
        return self.inner.decide(observation)


def as_policy(built: object, backend: str, tier: str) -> Policy:
    """What a backend's factory returned, as a ``Policy``; ``BackendError`` naming the backend and what is
    missing when it is neither a ``Policy`` nor an object with ``decide(observation)``."""
    if isinstance(built, Policy):
        return built
    if isinstance(built, type):  # a class has its instances' methods, but is no policy itself
        raise BackendError(f"tiers.{tier}: backend {quoted(backend)} returned the class {built.__name__}, not an "
                           f"instance of it: the factory must return e.g. {built.__name__}(...)")
    if isinstance(built, Decides):
        return PlainPolicy(built)
    raise BackendError(f"tiers.{tier}: backend {quoted(backend)} returned {type(built).__name__}, which has no "
                       "decide(observation) method: a policy needs decide(observation) -> Decision "
                       "(or subclass market.backends.Policy)")


def _guarded(decide: Callable[[Observation], Decision], observation: Observation) -> Decision | AgentFailure:
    """``decide`` with a trader's own failure turned into its ``AgentFailure``."""
    try:
        return decide(observation)
    except Exception as exc:  # a custom policy's bug costs its trader the turn, not the week
        return _as_failure(exc)


def _as_failure(exc: Exception) -> AgentFailure:
    """A trader's failed turn for ``exc``; what no trader is at fault for is raised again: a
    ``FatalPolicyError``, a ``BackendError``, ``MemoryError`` and a full disk stop the run (resumable)."""
    if isinstance(exc, FatalPolicyError | BackendError | MemoryError) or disk_full(exc):
        raise exc
    if isinstance(exc, AgentFailure):
        return exc
    return AgentFailure("policy_error", f"{type(exc).__name__}: {exc}")


def disk_full(exc: BaseException) -> bool:
    """Whether ``exc``, or an exception it was raised from, says the disk (or the database's share of it) is full:
    ``ENOSPC`` or ``EDQUOT`` from the system, ``SQLITE_FULL`` from SQLite (the low byte of an extended code).

    The chain of causes is followed because SimPy re-raises a process's exception as a fresh copy (the same type
    and arguments, the original as its ``__cause__``), which has lost SQLite's code."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        # sqlite3 sets the code on the errors SQLite itself reports; one made by hand (no code) is not a full disk
        code = getattr(seen, "sqlite_errorcode", None) if isinstance(seen, sqlite3.Error) else None
        if code is not None and code & 0xFF == sqlite3.SQLITE_FULL:
            return True
        seen = seen.__cause__
    return False


@dataclass
class BackendContext:
    """What a backend may need beyond its tier settings."""

    scenario: Scenario
    run_dir: Path | None = None
    options: dict[str, Any] = field(default_factory=dict)
    # policies shared by several tiers of one plan, by key (e.g. every model-backed tier's one policy)
    shared: dict[str, Policy] = field(default_factory=dict)


class BackendError(ValueError):
    """A backend that cannot be found or set up; the message says what to fix."""


def known_backends() -> list[str]:
    """The backend names that need no dotted path: the entry points and the built-ins."""
    return sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)} | set(_BUILTIN))


def load_factory(name: str) -> Callable[..., object]:
    """The factory of backend ``name``: an entry point, a built-in, or a dotted path ``package.module:factory``."""
    target = name if ":" in name else None
    if target is None:
        found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
        if found:
            return found[0].load()
        target = _BUILTIN.get(name)
    if target is None:
        raise BackendError(f"unknown backend {quoted(name)}; known backends: {', '.join(known_backends())}; a "
                           "policy of your own is a path module:factory (e.g. examples.my_agent:build)")
    module, _, attr = target.partition(":")
    try:
        return getattr(_import(module), attr)  # the attribute the path names, not a probe
    except (ImportError, AttributeError) as exc:
        shown = quoted(name) + (f" ({target})" if target != name else "")
        raise BackendError(f"backend {shown} cannot be loaded: {exc} (searched the current folder {os.getcwd()} "
                           f"and the installed packages; known backends: {', '.join(known_backends())})") from exc


def _import(module: str) -> ModuleType:
    """``module`` imported as ``python -m`` would find it: the current folder first, then the installed
    packages (the ``market`` console script's own ``sys.path`` starts with its bin folder instead)."""
    here = os.getcwd()
    if here not in sys.path and "" not in sys.path:
        sys.path.insert(0, here)
    return importlib.import_module(module)


def build_policies(context: BackendContext) -> dict[str, Policy]:
    """One policy per tier of the scenario."""
    policies = {}
    for tier, settings in context.scenario.tiers.items():
        policies[tier] = build_policy(tier, settings, context)
    return policies


def build_policy(tier: str, settings: TierSettings, context: BackendContext) -> Policy:
    """Tier ``tier``'s policy: its backend's ``factory(tier, settings, context)`` as a ``Policy`` (see as_policy)."""
    factory = load_factory(settings.backend)
    try:
        inspect.signature(factory).bind(tier, settings, context)
    except (TypeError, ValueError) as exc:  # not callable, or not with these three arguments
        raise BackendError(f"tiers.{tier}: backend {quoted(settings.backend)} cannot be called as "
                           f"factory(tier, settings, context): {exc}") from exc
    try:
        built = factory(tier, settings, context)
    except BackendError:
        raise
    except (ValueError, KeyError) as exc:
        raise BackendError(f"tiers.{tier}: {exc}") from exc
    return as_policy(built, settings.backend, tier)


def distinct(policies: dict[str, Policy]) -> list[Policy]:
    """Each policy once, though several tiers may share it (model tiers share one)."""
    return list({id(p): p for p in policies.values()}.values())


def decide_all(batch: Sequence[tuple[Policy, Observation]]) -> list[Decision | AgentFailure]:
    """Decisions for a whole batch, each policy seeing all of its observations at once.

    Each policy gets its share in one ``decide_batch`` call (model backends run
    those concurrently). The result is in the batch's order whatever order answers
    arrive in. Failure isolation lives here, once: a slot that holds neither a
    ``Decision`` nor an ``AgentFailure`` becomes ``AgentFailure("not_a_decision")``,
    and an exception from a policy's ``decide_batch`` as a whole (or an answer of
    the wrong length) costs each of that policy's traders its turn
    (``policy_error``). A ``FatalPolicyError`` propagates (the run stops cleanly after
    the batch), and so do a ``BackendError`` (the backend itself cannot go on), a full
    disk and ``MemoryError``: no trader is at fault for those.
    """
    results: list[Decision | AgentFailure | None] = [None] * len(batch)
    groups: dict[int, list[int]] = {}
    for index, (policy, _) in enumerate(batch):
        groups.setdefault(id(policy), []).append(index)
    for indexes in groups.values():
        policy = batch[indexes[0]][0]
        answers = _answers(policy, [batch[i][1] for i in indexes])
        for i, answer in zip(indexes, answers, strict=True):
            results[i] = answer
    return results  # type: ignore[return-value]


def _answers(policy: Policy, observations: list[Observation]) -> list[Decision | AgentFailure]:
    """One policy's checked answers for its share of a batch, one per observation."""
    try:
        answers = policy.decide_batch(observations)
    except Exception as exc:  # a policy's bug costs its traders this turn, not the week
        return [_as_failure(exc)] * len(observations)
    if not isinstance(answers, list | tuple) or len(answers) != len(observations):
        size = len(answers) if isinstance(answers, list | tuple) else type(answers).__name__
        failure = AgentFailure("policy_error", f"decide_batch answered {size} for {len(observations)} observations")
        return [failure] * len(observations)
    return [a if isinstance(a, Decision | AgentFailure) else
            AgentFailure("not_a_decision", f"the policy returned {type(a).__name__}, not a Decision")
            for a in answers]
