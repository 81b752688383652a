"""The model-backed policy: turns observations into tool calls and tool calls into actions.

One ``ModelPolicy`` serves every model-backed tier of a run (each tier's factory
returns the same object, shared through the plan's ``BackendContext.shared``), so a
batch's calls for all tiers run together on one event loop, bounded by
``--concurrency`` and per-model rate limits. Per trader it keeps a bounded
conversation (the last ``history_turns`` turns; older ones are summarised as the
actions taken). A malformed tool call gets its validation error and one repair
attempt, then is counted and skipped; a refusal or an empty answer is a ``pass``.
An answer cut off at ``max_tokens`` is never acted on: every call in it is sent back
as cut off for one repair. Every call goes through the tier's transport
(``agents.llm.transport``), composed on the tier's first call: a recorded request is answered from the
cassette (free, no network), a new one is sent (retried, within rate limits) and appended.

Failures are isolated per trader (``market.backends.Policy``): a 400 for one
conversation, a tool call that cannot be repaired, a repair cut off again, hostile
JSON or a prompt over the model's context is an ``AgentFailure`` in that trader's
slot of ``decide_batch`` (counted per tier), and the trader's conversation is reset.
Account-level refusals (key, permission, unknown model, quota, billing) raise
``FatalPolicyError`` after the batch's calls in flight have been answered and recorded;
so does an API that cannot be reached: once a call has used its retries on connection
failures and its tier has had ``UNREACHABLE_STOP`` of them in a row with no answer in between,
the run stops naming the URL (a connection attempt gives up after ``CONNECT_TIMEOUT``).
The wire formats (``agents.llm.wire.Api``) build requests and read answers; they never call back here.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections import Counter
from collections.abc import Callable, Collection, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from agents.interview import interview, interviewed_instructions, write_instructions
from agents.llm import prompts
from agents.llm.cassette import Cassette, CassetteError, canonical, keyed_text
from agents.llm.pricing import Price, Usage, cost_nanocents, dollars, lookup, price_from, table
from agents.llm.ratelimit import ModelLimits
from agents.llm.tools import HostileJson, ToolCallError, to_action
from agents.llm.transport import (
    Gate,
    GaveUp,
    ModelRequest,
    ModelTransport,
    RecordedFailure,
    Recording,
    Replay,
    ReplayMiss,
    Retrying,
)
from agents.llm.wire import Api, Reply
from market.actions import Action, Pass
from market.backends import AgentFailure, BackendContext, BackendError, FatalPolicyError, Policy
from market.observation import Decision, Observation
from market.scenario import TierSettings

SHARED_KEY = "model"  # the run's one ModelPolicy in ``BackendContext.shared``
INITIAL_RETRY_WAIT = 0.5  # seconds before the first retry without a retry-after: the official SDKs' default
T = TypeVar("T")


class Asker(Protocol):
    """Who a call is made for: an ``Observation``, or an after-run question (e.g. the survey)."""

    market: str
    trader: str
    tier: str
    step: int


@dataclass
class Turn:
    """One kept turn of a trader's conversation: the user message's ``text``, the tool results that lead it,
    and the messages that answered it."""

    text: str
    lead: list[tuple[str, str, bool]]  # results answering the previous turn's last tool calls
    rest: list[dict[str, Any]]  # assistant message, then any repair exchange
    summary: str  # the actions this turn produced, for the digest once it is dropped


@dataclass
class Memory:
    """One trader's bounded conversation."""

    turns: list[Turn] = field(default_factory=list)
    digest: list[str] = field(default_factory=list)
    pending: list[tuple[str, str, bool]] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)  # tool call ids used in the conversation

    def render(self, api: Api) -> list[dict[str, Any]]:
        """The kept turns as messages (the oldest turn's leading tool results dropped with its question)."""
        messages: list[dict[str, Any]] = []
        for i, turn in enumerate(self.turns):
            messages += api.user(turn.lead if i else [], self.opening(turn.text) if i == 0 else turn.text)
            messages += turn.rest
        return messages

    def opening(self, text: str) -> str:
        """``text`` of the conversation's first user message, after the digest of dropped turns."""
        if not self.digest:
            return text
        return "Earlier turns, summarised: " + "; ".join(self.digest[-30:]) + "\n\n" + text

    def reset(self, note: str) -> None:
        """Forget the conversation (after a failed turn), keeping the digest of what was done."""
        self.digest += [t.summary for t in self.turns] + [note]
        self.turns, self.pending, self.ids = [], [], set()

    def trim(self, keep: int) -> None:
        """Past ``keep`` turns, drop the oldest half at once (so the cached prefix changes rarely)."""
        if len(self.turns) > keep:
            cut = len(self.turns) - max(1, keep // 2)
            self.digest += [t.summary for t in self.turns[:cut]]
            self.turns = self.turns[cut:]


@dataclass
class Account:
    """One trader's model calls (or a sum of accounts): calls made (``replayed``: answered from a cassette),
    tokens, cost (all calls) and spend (calls sent by this process), faults and turns lost."""

    calls: int = 0
    replayed: int = 0
    usage: Usage = field(default_factory=Usage)
    cost: int = 0  # nano-cents, all calls of the run
    spent: int = 0  # nano-cents, calls sent by this process
    faults: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)  # turns lost, by AgentFailure kind

    @classmethod
    def total(cls, accounts: Iterable[Account]) -> Account:
        """One account adding up ``accounts``."""
        out = cls()
        for a in accounts:
            out.calls += a.calls
            out.replayed += a.replayed
            out.usage += a.usage
            out.cost += a.cost
            out.spent += a.spent
            out.faults.update(a.faults)
            out.failures.update(a.failures)
        return out

    def as_dict(self) -> dict[str, Any]:
        """The account as JSON-ready figures: counts, tokens, cache share, cost and spend in dollars, faults and
        failures by kind (sorted)."""
        total_in = self.usage.total_input
        return {
            "calls": self.calls, "replayed_calls": self.replayed, **self.usage.as_dict(),
            "cache_share": round(self.usage.cache_read / total_in, 4) if total_in else 0.0,
            "cost_nanocents": self.cost, "cost_usd": round(dollars(self.cost), 6),
            "spent_usd": round(dollars(self.spent), 6), "faults": dict(sorted(self.faults.items())),
            "failures": dict(sorted(self.failures.items())),
        }


@dataclass
class Tier:
    """One model-backed tier: its settings, wire format, model and price, and how its requests are answered
    (``live``: the transport that reaches the model, None when the tier only replays its cassette;
    ``transport``: the whole chain the policy composed around it, on the tier's first call)."""

    name: str
    settings: TierSettings
    api: Api
    model: str
    price: Price
    live: ModelTransport | None = None
    transport: ModelTransport | None = None

    @property
    def replay(self) -> bool:
        """Answered from the cassette only."""
        return self.live is None


def _summary_of(actions: Sequence[Action], step: int) -> str:
    parts = []
    for a in actions:
        fields = a.model_dump(exclude={"type", "message", "description", "text"})
        parts.append(a.type + "(" + ",".join(f"{k}={v}" for k, v in fields.items()) + ")")
    return f"turn {step}: " + (", ".join(parts) or "pass")


class ModelPolicy(Policy):
    """Every model-backed tier of one run; see the module docstring."""

    def __init__(self, context: BackendContext) -> None:
        self.context = context
        self.tiers: dict[str, Tier] = {}
        self.gate = Gate(int(context.options.get("concurrency", 16)))
        self.retry_wait = float(context.options.get("retry_wait", INITIAL_RETRY_WAIT))
        self.source = Path(context.options["cassette"]) if context.options.get("cassette") else None
        self.run_dir: Path | None = None
        # nothing is written before the run starts (``open_run``); a resumed run's cassette is read now
        own = Path(context.run_dir) / "cassette.jsonl" if context.run_dir is not None else None
        self.cassette = Cassette(None, source=self.source or own)
        if self.source is not None and own is not None and own.is_file():
            self.cassette._load(own)
        self.memory: dict[tuple[str, str], Memory] = {}
        self.instructions: dict[str, str] = {}
        self._systems: dict[tuple[str, str], tuple[object, str]] = {}  # (market, principal id): one per market
        self.accounts: dict[tuple[str, str, str], Account] = {}
        self._limits: dict[tuple[str, str | None, str], ModelLimits] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="model-calls", daemon=True)
        self._thread.start()
        self._closing = threading.Lock()
        self._closed = False

    @property
    def concurrency(self) -> int:
        """Calls (and turns) in flight at most."""
        return self.gate.concurrency

    # --- set-up --------------------------------------------------------------
    def add_tier(self, tier: str, settings: TierSettings, api: Api, model: str, live: ModelTransport | None,
                 price: Price | None = None) -> None:
        """Serve ``tier`` with ``model`` over ``api``, reaching the model through ``live`` (None: the tier is
        answered from the cassette only). ``price``: what ``check_tier`` gave for these settings, when the backend
        checked them before starting anything for the tier; else they are checked here (``BackendError`` as
        ``check_tier``). The tier's transport is composed around ``live`` on its first call (``transport``)."""
        if price is None:
            price = self.check_tier(tier, settings, model)
        self.tiers[tier] = Tier(tier, settings, api, model, price, live)
        self._write_tier(self.tiers[tier])

    def check_tier(self, tier: str, settings: TierSettings, model: str) -> Price:
        """``model``'s price for ``tier``; ``BackendError`` for a bad context window or an unpriced model (before
        anything is started for the tier)."""
        context_tokens(settings, f"tiers.{tier}.options.context_tokens")  # a bad window is refused before the run
        price = lookup(model)
        if "price" in settings.options:
            price = price_from(model, settings.options["price"], f"tiers.{tier}.options.price")
        if price is None:
            raise BackendError(
                f"tiers.{tier}: unknown model {model!r}; priced models: {', '.join(sorted(table()[1]))}. "
                f"Use one of them, add it to agents/llm/pricing.yaml, or give "
                f"`options: {{price: {{input: '1.00', output: '5.00'}}}}` (dollars per million tokens)"
            )
        return price

    def transport(self, tier: Tier) -> ModelTransport:
        """``tier``'s transport, composed (``compose``) on its first call: in a run that is after ``open_run``,
        so the chain is built once, around the run's own cassette."""
        if tier.transport is None:
            tier.transport = self.compose(tier)
        return tier.transport

    def compose(self, tier: Tier) -> ModelTransport:
        """``tier``'s transport: ``Replay(cassette)`` for a replayed tier, else the cassette first and a new
        request sent through ``Retrying`` (limits per API, URL and model) and recorded."""
        if tier.live is None:
            return Replay(self.cassette)
        limits = self._limits.setdefault(
            (tier.api.name, tier.settings.base_url, tier.model), ModelLimits.make(tier.settings.rpm, tier.settings.tpm)
        )
        retrying = Retrying(tier.live, tier.settings, limits, self.gate, self.retry_wait)
        return Replay(self.cassette, Recording(self.cassette, retrying))

    def _write_tier(self, tier: Tier) -> None:
        if self.cassette.path is None:
            return
        self.cassette.append({
            "kind": "tier", "tier": tier.name, "api": tier.api.name, "model": tier.model,
            "settings": tier.settings.model_dump(mode="json"),
        })

    def open_run(self, run_dir: Path) -> None:
        """Record into ``run_dir/cassette.jsonl`` (what is already there answers first)."""
        run_dir = Path(run_dir)
        if self.run_dir == run_dir:
            return
        self.run_dir = run_dir
        own = run_dir / "cassette.jsonl"
        if self.source is not None and self.source.resolve() != own.resolve() and not own.exists():
            shutil.copyfile(self.source, own)  # a replayed run carries its own copy
        self.cassette = Cassette(own, source=self.source)
        for tier in self.tiers.values():
            tier.transport = None  # one composed before (a call before the run opened) used the old cassette
            self._write_tier(tier)

    def configure(self, concurrency: int | None = None) -> None:
        """Change the number of calls in flight before the run starts."""
        if concurrency:
            self.gate.concurrency = concurrency

    # --- deciding ------------------------------------------------------------
    def decide(self, observation: Observation) -> Decision:
        """One trader's decision; its failure is raised as its ``AgentFailure``."""
        result = self.decide_batch([observation])[0]
        if isinstance(result, AgentFailure):
            raise result
        return result

    def decide_batch(self, observations: Sequence[Observation]) -> list[Decision | AgentFailure]:
        """All decisions of one batch, called concurrently; returned in input order."""
        return self.run(self._batch(list(observations)))

    async def _batch(self, observations: list[Observation]) -> list[Decision | AgentFailure]:
        self.gate.semaphore()  # made before the first turn (the bound of calls in flight)
        # one trader's observations (the engine can wake a trader twice in a batch) run in order, since
        # each turn extends that trader's conversation; different traders run concurrently
        results: list[Decision | AgentFailure | None] = [None] * len(observations)
        groups: dict[tuple[str, str], list[int]] = {}
        for i, obs in enumerate(observations):
            groups.setdefault((obs.market, obs.trader), []).append(i)

        # the first ``concurrency`` traders' turns start at once, and each later one (in order) when an earlier
        # turn's call has its answer (``ModelRequest.answered``), or that turn ends with none: so a trader's
        # request is built only when it can be sent, and it goes out before the answer that freed its slot is
        # worked on (``Gate.pace``: each stretch of work has a loop turn of its own, those sending first, so
        # each request is written as soon as it is built)
        queue = iter(groups.values())
        errors: list[BaseException] = []
        started: list[asyncio.Task[None]] = []

        def start_next() -> None:
            indexes = next(queue, None)
            if indexes is not None:
                started.append(asyncio.get_running_loop().create_task(turns(indexes)))

        async def turns(indexes: list[int]) -> None:
            handed = False

            def hand_over() -> None:
                nonlocal handed
                if not handed:
                    handed = True
                    start_next()

            await self.gate.pace(sending=True)
            try:
                for i in indexes:
                    results[i] = await self._decide(observations[i], hand_over)
            except Exception as exc:  # that trader's later turns are skipped; the others go on
                errors.append(exc)
            finally:
                hand_over()

        for _ in range(min(self.concurrency, len(groups))):
            start_next()
        # every turn runs to its end (a call in flight is answered and recorded) before a run-level
        # error (a refused account, a replay miss) is raised; the list grows as turns start others
        for task in started:
            await task
        if errors:
            raise next((e for e in errors if isinstance(e, FatalPolicyError)), errors[0])
        return results  # type: ignore[return-value]

    def _system(self, obs: Observation) -> str:
        """The trader's system text: on first use, the instructions from its person's own interview
        (``instructions/<id>.interview.md``) if they were interviewed, else its principal is
        interviewed by the simulated script and those instructions are written down."""
        pid = obs.principal.id
        if pid not in self.instructions:
            own = interviewed_instructions(self.run_dir, pid) if self.run_dir is not None else None
            if own is not None:
                self.instructions[pid] = own
            else:
                self.instructions[pid] = interview(obs.principal).instructions
                if self.run_dir is not None:
                    write_instructions(self.run_dir, obs.principal)
        # keyed by market too: the same person trades in several markets, each with its own principal object
        principal, system = self._systems.get((obs.market, pid), (None, ""))
        if principal is not obs.principal:  # the same object all run long, unless the principal changed
            system = prompts.system_text(obs.principal, self.instructions[pid], self.context.scenario.rules)
            self._systems[obs.market, pid] = (obs.principal, system)
        return system

    async def _decide(self, obs: Observation, answered: Callable[[], None] | None = None) -> Decision | AgentFailure:
        """One turn; a failure of this trader's turn is its ``AgentFailure`` (counted, conversation reset).
        ``answered``: called when its first call has its answer (``ModelRequest.answered``)."""
        try:
            return await self._turn(obs, answered)
        except (FatalPolicyError, ReplayMiss):
            raise
        except AgentFailure as failure:
            return self._failed(obs, failure)
        except Exception as exc:  # a bug met by one conversation costs that trader its turn
            return self._failed(obs, AgentFailure("policy_error", f"{type(exc).__name__}: {exc}"))

    def _failed(self, obs: Observation, failure: AgentFailure) -> AgentFailure:
        self._account(obs).failures[failure.kind] += 1
        memory = self.memory.get((obs.market, obs.trader))
        if memory is not None:
            memory.reset(f"turn {obs.step}: failed ({failure.kind})")
        return failure

    def turn_request(self, tier: Tier, memory: Memory, system: str, text: str) -> tuple[dict, list[dict]]:
        """(the request of a new turn, its messages): the kept conversation, then the new observation."""
        lead = memory.pending if memory.turns else []
        messages = memory.render(tier.api) + tier.api.user(lead, text if memory.turns else memory.opening(text))
        return tier.api.request(tier.settings, tier.model, system, messages), messages

    def fitted_request(self, tier: Tier, memory: Memory, system: str, text: str) -> tuple[dict, list[dict]]:
        """``turn_request`` within the tier's context window (``options.context_tokens``, tokens counted as
        bytes / 4 of the request): the oldest turns are dropped into the digest until the prompt and
        ``max_tokens`` fit; ``AgentFailure("context_too_long")`` when even the new turn alone does not."""
        request, messages = self.turn_request(tier, memory, system, text)
        window = context_tokens(tier.settings)
        if window is None:
            return request, messages
        while (size := len(canonical(request)) // 4) + tier.settings.max_tokens > window:
            if not memory.turns:
                raise AgentFailure("context_too_long", f"the prompt is about {size:,} tokens and max_tokens "
                                   f"{tier.settings.max_tokens:,}: over the context window of {window:,} tokens")
            memory.digest.append(memory.turns.pop(0).summary)
            request, messages = self.turn_request(tier, memory, system, text)
        return request, messages

    async def _turn(self, obs: Observation, answered: Callable[[], None] | None = None) -> Decision:
        tier = self.tiers[obs.tier]
        account = self._account(obs)
        memory = self.memory.setdefault((obs.market, obs.trader), Memory())
        system = self._system(obs)
        text = prompts.observation_text(obs)
        request, messages = self.fitted_request(tier, memory, system, text)
        lead = memory.pending if memory.turns else []
        reply = await self.call(tier, obs, request, "turn", taken=memory.ids, answered=answered)
        if reply is None:  # gave up after retries: a pass; the conversation is left as it was
            return Decision(actions=(Pass(),), note="model call failed")
        memory.ids.update(c.id for c in reply.calls)
        actions, errors = self._convert(reply, account)
        rest, final = [reply.assistant], reply
        if errors:
            results = _results(reply, errors)
            repair = tier.api.user(results, prompts.REPAIR_TEXT)
            request = tier.api.request(tier.settings, tier.model, system, messages + rest + repair)
            account.faults["repair_attempts"] += 1
            repaired = await self.call(tier, obs, request, "repair", taken=memory.ids)
            if repaired is None:  # the repair call failed: the bad calls are skipped, the exchange forgotten
                account.faults["skipped_calls"] += len(errors)
            else:
                memory.ids.update(c.id for c in repaired.calls)
                if repaired.stop == "max_tokens":
                    account.faults["cut_off"] += 1
                    raise AgentFailure("cut_off", "the answer and its repair were both cut off at max_tokens")
                more, still = self._convert(repaired, account)
                if still and not actions and not more:
                    raise AgentFailure("unrepairable_tool_call", next(iter(still.values())).removeprefix("error: "))
                account.faults["skipped_calls"] += len(still)
                if not still and errors:
                    account.faults["repaired"] += 1
                actions += more
                rest += [*repair, repaired.assistant]
                final, errors = repaired, still
        memory.turns.append(Turn(text=text, lead=lead, rest=rest, summary=_summary_of(actions, obs.step)))
        memory.pending = _results(final, errors)
        memory.trim(tier.settings.history_turns)
        note = final.text[:500] or None
        return Decision(actions=tuple(actions) or (Pass(),), note=note)

    def _convert(self, reply: Reply, account: Account) -> tuple[list[Action], dict[str, str]]:
        """(the actions of a reply's tool calls, the errors of those that cannot be used, by call id).

        Nothing of an answer cut off at ``max_tokens`` is used: each of its calls is an error to repair.
        Hostile arguments fail the turn (``hostile_json``).
        """
        if reply.stop == "max_tokens":
            account.faults["cut_off"] += 1
            return [], {c.id: prompts.CUT_OFF_TEXT for c in reply.calls}
        if reply.stop == "refusal":
            account.faults["refusals"] += 1
            return [], {}
        if not reply.calls:
            account.faults["empty_answers"] += 1
        actions, errors = [], {}
        for call in reply.calls:
            try:
                actions.append(to_action(call.name, call.arguments))
            except HostileJson as exc:
                raise AgentFailure("hostile_json", str(exc)) from None
            except ToolCallError as exc:
                errors[call.id] = f"error: {exc}"
                account.faults["malformed_calls"] += 1
        return actions, errors

    # --- one call through the tier's transport ------------------------------------------------
    async def call(
        self, tier: Tier, obs: Asker, request: dict[str, Any], purpose: str, account: Account | None = None,
        taken: Collection[str] = (), answered: Callable[[], None] | None = None,
    ) -> Reply | None:
        """One call through the tier's transport, counted on ``account`` (default: the trader's own); ``taken``:
        the tool call ids the conversation already uses; ``answered``: see ``ModelRequest``.

        None when the call gave up after its retries; ``AgentFailure`` when the API refused this
        conversation or the answer cannot be read; ``FatalPolicyError`` when the account is refused;
        ``ReplayMiss`` when a replayed tier asks what was not recorded.
        """
        if account is None:
            account = self._account(obs)
        key, size, body = keyed_text(tier.api.name, request)
        where = {"market": obs.market, "trader": obs.trader, "tier": obs.tier, "step": obs.step, "purpose": purpose}
        asked = ModelRequest(tier.api.name, tier.name, tier.model, request, body, key, size, where, account.faults,
                             answered)
        try:
            answer = await self.transport(tier).send(asked)
        except GaveUp as exc:
            account.replayed += int(exc.replayed)
            account.faults["gave_up"] += 1
            return None
        except AgentFailure as exc:
            account.replayed += int(isinstance(exc, RecordedFailure))
            account.calls += 1
            raise
        reply = tier.api.parse(answer.body, taken)
        account.calls += 1
        account.replayed += int(answer.replayed)
        account.usage += reply.usage
        cost = cost_nanocents(reply.usage, tier.price)
        account.cost += cost
        if not answer.replayed:
            account.spent += cost
        return reply

    def _account(self, obs: Asker) -> Account:
        return self.accounts.setdefault((obs.market, obs.tier, obs.trader), Account())

    # --- reporting -----------------------------------------------------------
    def cost_usd(self) -> float:
        """Dollars of every model call of the run so far (replayed ones at their recorded usage)."""
        return dollars(sum(a.cost for a in self.accounts.values()))

    def summary(self) -> dict[str, Any]:
        """Tokens, cost, faults and failed turns per tier, per market and tier, and per trader (for summary.json)."""
        total = Account.total
        by_tier: dict[str, list[Account]] = {}
        by_market: dict[str, dict[str, list[Account]]] = {}
        for (market, tier, _), account in sorted(self.accounts.items()):
            by_tier.setdefault(tier, []).append(account)
            by_market.setdefault(market, {}).setdefault(tier, []).append(account)
        everything = total(list(self.accounts.values()))
        return {"llm": {
            "pricing_checked": table()[0],
            "models": {t.name: {"api": t.api.name, "model": t.model, "replay": t.replay} for t in self.tiers.values()},
            "total": everything.as_dict(),
            "tiers": {tier: total(accs).as_dict() for tier, accs in by_tier.items()},
            "markets": {m: {t: total(a).as_dict() for t, a in tiers.items()} for m, tiers in by_market.items()},
            "traders": {f"{m}/{p}": a.as_dict() for (m, _, p), a in sorted(self.accounts.items())},
        }}

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` on this policy's event loop (where its clients, limits and semaphore live)."""
        return asyncio.run_coroutine_threadsafe(work, self._loop).result()

    def close(self) -> None:
        """Close the tiers' transports (SDK clients, local servers) and stop the event loop (idempotent, and safe
        from several threads: a second call returns at once, after the first has stopped the loop or given up)."""
        with self._closing:
            if self._closed:
                return
            self._closed = True
            if self._loop.is_running():  # the clients' connections belong to the loop: closed on it
                try:
                    asyncio.run_coroutine_threadsafe(self._close_transports(), self._loop).result(CLOSE_TIMEOUT)
                except TimeoutError:  # connections left open die with the loop; nothing recorded depends on them
                    pass
                finally:
                    self._loop.call_soon_threadsafe(self._loop.stop)
                    self._thread.join(CLOSE_TIMEOUT)

    async def _close_transports(self) -> None:
        live = {id(t.live): t.live for t in self.tiers.values() if t.live is not None}
        for transport in live.values():
            await transport.aclose()


CLOSE_TIMEOUT = 30.0
"""Seconds closing the transports, and then the loop's thread, may take before close gives up on them."""


def context_tokens(settings: TierSettings, where: str = "options.context_tokens") -> int | None:
    """The model's context window a tier declares (``options: {context_tokens: N}``), if it does."""
    value = settings.options.get("context_tokens")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 256 <= value <= 10_000_000:
        raise BackendError(f"{where}: a whole number of tokens from 256 to 10,000,000, got {value!r}")
    return value


def _results(reply: Reply, errors: dict[str, str]) -> list[tuple[str, str, bool]]:
    """The tool results answering every call of ``reply``: its error, or queued."""
    return [(c.id, errors.get(c.id, prompts.TOOL_QUEUED), c.id in errors) for c in reply.calls]


def shared_policy(context: BackendContext) -> ModelPolicy:
    """The plan's one ``ModelPolicy`` (made on first use, kept in the context's ``shared`` registry)."""
    policy = context.shared.get(SHARED_KEY)
    if not isinstance(policy, ModelPolicy):
        policy = ModelPolicy(context)
        context.shared[SHARED_KEY] = policy
    return policy


def model_policy(policies: Iterable[Policy]) -> ModelPolicy | None:
    """The ``ModelPolicy`` among a run's policies, if a tier ran on a model."""
    return next((p for p in policies if isinstance(p, ModelPolicy)), None)


__all__ = [
    "Account", "AgentFailure", "Asker", "CassetteError", "FatalPolicyError", "ModelPolicy", "ReplayMiss", "Reply",
    "Tier", "model_policy", "shared_policy",
]
