"""Custom policies for failure tests, loadable as backends by dotted path
(``backend: tests.market.policies:raising``): offline traders that fail in chosen ways."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agents.offline import PROFILES, OfflinePolicy
from market.backends import AgentFailure, BackendContext, FatalPolicyError
from market.observation import Decision, Observation
from market.scenario import TierSettings


class Raising(OfflinePolicy):
    """Raises (a bug in a custom policy) for the traders in ``fail``; decides as offline for the rest."""

    def __init__(self, *args: Any, fail: Sequence[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fail = set(fail)

    def decide(self, obs: Observation) -> Decision:
        if obs.trader in self.fail:
            raise ZeroDivisionError(f"custom policy bug for {obs.trader}")
        return super().decide(obs)


class NotADecision(OfflinePolicy):
    """Answers the traders in ``fail`` with something that is not a Decision."""

    def __init__(self, *args: Any, fail: Sequence[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fail = set(fail)

    def decide_batch(self, observations: Sequence[Observation]) -> list[Decision | AgentFailure]:
        answers = super().decide_batch(observations)
        return [{"actions": []} if o.trader in self.fail else a  # type: ignore[misc]
                for o, a in zip(observations, answers, strict=True)]


class BrokenBatch(OfflinePolicy):
    """``decide_batch`` itself raises for any batch holding one of ``fail``, or answers one slot short."""

    def __init__(self, *args: Any, fail: Sequence[str], short: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fail, self.short = set(fail), short

    def decide_batch(self, observations: Sequence[Observation]) -> list[Decision | AgentFailure]:
        answers = super().decide_batch(observations)
        if any(o.trader in self.fail for o in observations):
            if self.short:
                return answers[:-1]
            raise RuntimeError("the whole batch went wrong")
        return answers


class Fatal(OfflinePolicy):
    """Decides as offline until simulated second ``at``, then the account is gone (e.g. quota)."""

    def __init__(self, *args: Any, at: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.at = at

    def decide_batch(self, observations: Sequence[Observation]) -> list[Decision | AgentFailure]:
        if any(o.at >= self.at for o in observations):
            raise FatalPolicyError("insufficient_quota: the account has run out of credit")
        return super().decide_batch(observations)


def _build(cls: type[OfflinePolicy], tier: str, settings: TierSettings, context: BackendContext) -> OfflinePolicy:
    options = dict(settings.options)
    return cls(PROFILES[settings.profile or tier], seed=context.scenario.seed, **options)


def raising(tier: str, settings: TierSettings, context: BackendContext) -> OfflinePolicy:
    """The ``tests.market.policies:raising`` backend (options: ``fail``, trader ids)."""
    return _build(Raising, tier, settings, context)


def fatal(tier: str, settings: TierSettings, context: BackendContext) -> OfflinePolicy:
    """The ``tests.market.policies:fatal`` backend (options: ``at``, the simulated second it fails from)."""
    return _build(Fatal, tier, settings, context)


def topped_up(tier: str, settings: TierSettings, context: BackendContext) -> OfflinePolicy:
    """The same tier once its account has credit again: plain offline decisions (its options are ignored)."""
    return OfflinePolicy(PROFILES[settings.profile or tier], seed=context.scenario.seed)


class Costly(OfflinePolicy):
    """Offline decisions priced like model calls: a tenth of a cent per turn (for ``--max-cost``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.turns = 0

    def decide(self, obs: Observation) -> Decision:
        self.turns += 1
        return super().decide(obs)

    def cost_usd(self) -> float:
        return self.turns / 1000

    def summary(self) -> dict[str, Any]:
        return {"costly": {"turns": self.turns, "cost_usd": self.cost_usd()}}


def costly(tier: str, settings: TierSettings, context: BackendContext) -> OfflinePolicy:
    """The ``tests.market.policies:costly`` backend."""
    return _build(Costly, tier, settings, context)


class DiskFull(OfflinePolicy):
    """Decides as offline until noon, then cannot write what it records (the disk is full)."""

    def decide(self, obs: Observation) -> Decision:
        if obs.at >= 12 * 3600:
            raise OSError(28, "No space left on device", "cassette.jsonl")
        return super().decide(obs)


def disk_full(tier: str, settings: TierSettings, context: BackendContext) -> OfflinePolicy:
    """The ``tests.market.policies:disk_full`` backend."""
    return _build(DiskFull, tier, settings, context)


class Refused(OfflinePolicy):
    """An account refused when the run opens (e.g. a revoked key)."""

    def open_run(self, run_dir: Path) -> None:
        raise FatalPolicyError("authentication_error: invalid x-api-key")


class Buggy(OfflinePolicy):
    """A backend with a bug in its set-up."""

    def open_run(self, run_dir: Path) -> None:
        raise KeyError("a bug")


def refused(tier: str, settings: TierSettings, context: BackendContext) -> OfflinePolicy:
    """The ``tests.market.policies:refused`` backend."""
    return _build(Refused, tier, settings, context)


def buggy(tier: str, settings: TierSettings, context: BackendContext) -> OfflinePolicy:
    """The ``tests.market.policies:buggy`` backend."""
    return _build(Buggy, tier, settings, context)
