"""The model-backed policy: turns observations into tool calls and tool calls into actions.

One ``ModelPolicy`` serves every model-backed tier of a run (each tier's factory
returns the same object, shared through the plan's ``BackendContext.shared``), so a
batch's calls for all tiers run together on one event loop, bounded by
``--concurrency`` and per-model rate limits. Per trader it keeps a bounded
conversation (the last ``history_turns`` turns; older ones are summarised as the
actions taken). A malformed tool call gets its validation error and one repair
attempt, then is counted and skipped; a refusal or an empty answer is a ``pass``.
An answer cut off at ``max_tokens`` is never acted on: every call in it is sent back
as cut off for one repair. Every call goes through the cassette: a recorded request
is answered from it (free, no network), a new one is sent and appended.

Failures are isolated per trader (``market.backends.Policy``): a 400 for one
conversation, a tool call that cannot be repaired, a repair cut off again, hostile
JSON or a prompt over the model's context is an ``AgentFailure`` in that trader's
slot of ``decide_batch`` (counted per tier), and the trader's conversation is reset.
Account-level refusals (key, permission, unknown model, quota, billing) raise
``FatalPolicyError`` after the batch's calls in flight have been answered and recorded;
so does an API that cannot be reached: once a call has used its retries on connection
failures and its tier has had ``UNREACHABLE_STOP`` of them in a row with no answer in between,
the run stops naming the URL (a connection attempt gives up after ``CONNECT_TIMEOUT``).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx2
import orjson

from agents.interview import interview, interviewed_instructions, write_instructions
from agents.llm import prompts
from agents.llm.cassette import Cassette, CassetteError, canonical, keyed_text
from agents.llm.pricing import Price, Usage, cost_nanocents, dollars, lookup, price_from, table
from agents.llm.ratelimit import ModelLimits, Retryable, Unreachable, with_retries
from agents.llm.tools import HostileJson, ToolCallError, to_action
from market.actions import Action, Pass
from market.backends import AgentFailure, BackendContext, BackendError, FatalPolicyError, Policy
from market.observation import Decision, Observation
from market.scenario import TierSettings

SHARED_KEY = "model"  # the run's one ModelPolicy in ``BackendContext.shared``
RAW_HEADERS = {"X-Stainless-Raw-Response": "raw", "Content-Type": "application/json"}
MAX_RESPONSE_BYTES = 8 * 2**20  # an answer longer than this is not read (hostile_json)
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
INITIAL_RETRY_WAIT = 0.5  # seconds before the first retry without a retry-after: the official SDKs' default
CONNECT_TIMEOUT = 10.0  # seconds to connect (TCP and TLS) before an attempt counts as a connection failure
UNREACHABLE_STOP = 3  # connection failures in a row, no answer in between, that stop the run (with a call given up)
T = TypeVar("T")


class Asker(Protocol):
    """Who a call is made for: an ``Observation``, or an after-run question (e.g. the survey)."""

    market: str
    trader: str
    tier: str
    step: int


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: Any  # a dict (Anthropic) or a JSON string (OpenAI)


@dataclass(frozen=True)
class Reply:
    """One model answer, in wire-neutral form."""

    calls: tuple[ToolCall, ...]
    text: str
    stop: str  # "tool_use", "end_turn", "max_tokens", "refusal", ...
    usage: Usage
    assistant: dict[str, Any]  # the assistant message to keep in the conversation


class Api(Protocol):
    """One wire format (Anthropic Messages, OpenAI chat completions).

    ``request`` makes a request the API accepts from any conversation the policy keeps (it places the
    cache breakpoints itself, at most the API's limit); ``parse`` keeps an assistant message that is
    valid to send back (tool names and ids as the API requires, no empty text).
    """

    name: str

    def request(self, settings: TierSettings, model: str, system: str, messages: list[dict[str, Any]]) -> dict: ...
    def user(self, results: Sequence[tuple[str, str, bool]], text: str) -> list[dict[str, Any]]: ...
    def parse(self, response: dict[str, Any], taken: Collection[str] = ()) -> Reply: ...
    def client(self, settings: TierSettings) -> Any: ...
    async def send(self, client: Any, body: bytes) -> tuple[dict[str, Any], str | None]:
        """POST one request, ``body`` its canonical JSON; returns (the response, its request id)."""
        ...


class ReplayMiss(BackendError):
    """A request the cassette does not hold, in replay mode."""


# How a request reaches a model: (tier, request, its canonical JSON) -> (response, request id). The default
# sends it through the tier's SDK client; ``agents.llm.estimate`` and tests answer in process instead. It raises
# ``Retryable`` (retried), ``AgentFailure`` (this conversation) or ``FatalPolicyError`` (the account).
Transport = Callable[["Tier", dict[str, Any], bytes], Awaitable[tuple[dict[str, Any], str | None]]]


@dataclass
class Turn:
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
    name: str
    settings: TierSettings
    api: Api
    model: str
    price: Price
    replay: bool


def _summary_of(actions: Sequence[Action], step: int) -> str:
    parts = []
    for a in actions:
        fields = a.model_dump(exclude={"type", "message", "description", "text"})
        parts.append(a.type + "(" + ",".join(f"{k}={v}" for k, v in fields.items()) + ")")
    return f"turn {step}: " + (", ".join(parts) or "pass")


class ModelPolicy(Policy):
    """Every model-backed tier of one run; see the module docstring."""

    def __init__(self, context: BackendContext, transport: Transport | None = None) -> None:
        self.context = context
        self.tiers: dict[str, Tier] = {}
        self.concurrency = int(context.options.get("concurrency", 16))
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
        self._systems: dict[str, tuple[object, str]] = {}
        self.accounts: dict[tuple[str, str, str], Account] = {}
        self._limits: dict[tuple[str, str | None, str], ModelLimits] = {}
        self._transport = transport
        self._fatal: FatalPolicyError | None = None  # once the account is refused, no call is sent
        self._unreachable: Counter[str] = Counter()  # per tier: connection failures since its last answer
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="model-calls", daemon=True)
        self._thread.start()
        self._semaphore: asyncio.Semaphore | None = None
        self._clients: dict[str, Any] = {}  # one SDK client per tier, made at set-up, closed with the policy

    # --- set-up --------------------------------------------------------------
    def add_tier(self, tier: str, settings: TierSettings, api: Api, model: str, replay: bool = False) -> None:
        """Serve ``tier`` with ``model`` over ``api`` (``replay``: from the cassette only)."""
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
        self.tiers[tier] = Tier(tier, settings, api, model, price, replay)
        if not replay and self._transport is None:
            self._clients[tier] = api.client(settings)
        self._write_tier(self.tiers[tier])

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
            self._write_tier(tier)

    def configure(self, concurrency: int | None = None) -> None:
        """Change the number of calls in flight before the run starts."""
        if concurrency:
            self.concurrency = concurrency

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
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.concurrency)
        # one trader's observations (the engine can wake a trader twice in a batch) run in order, since
        # each turn extends that trader's conversation; different traders run concurrently
        results: list[Decision | AgentFailure | None] = [None] * len(observations)
        groups: dict[tuple[str, str], list[int]] = {}
        for i, obs in enumerate(observations):
            groups.setdefault((obs.market, obs.trader), []).append(i)

        # at most ``concurrency`` turns are under way: a turn builds its request only when it can be
        # sent, rather than every waiting trader's request being built (on this one loop) while the
        # first calls wait to go out
        turns = asyncio.Semaphore(self.concurrency)

        async def in_order(indexes: list[int]) -> None:
            for i in indexes:
                async with turns:
                    results[i] = await self._decide(observations[i])

        # every turn runs to its end (a call in flight is answered and recorded) before a run-level
        # error (a refused account, a replay miss) is raised
        outcomes = await asyncio.gather(*(in_order(ix) for ix in groups.values()), return_exceptions=True)
        errors = [o for o in outcomes if isinstance(o, BaseException)]
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
        principal, system = self._systems.get(pid, (None, ""))
        if principal is not obs.principal:  # the same object all run long, unless the principal changed
            system = prompts.system_text(obs.principal, self.instructions[pid], self.context.scenario.rules)
            self._systems[pid] = (obs.principal, system)
        return system

    async def _decide(self, obs: Observation) -> Decision | AgentFailure:
        """One turn; a failure of this trader's turn is its ``AgentFailure`` (counted, conversation reset)."""
        try:
            return await self._turn(obs)
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

    async def _turn(self, obs: Observation) -> Decision:
        tier = self.tiers[obs.tier]
        account = self._account(obs)
        memory = self.memory.setdefault((obs.market, obs.trader), Memory())
        system = self._system(obs)
        text = prompts.observation_text(obs)
        request, messages = self.fitted_request(tier, memory, system, text)
        lead = memory.pending if memory.turns else []
        reply = await self._call(tier, obs, request, "turn", taken=memory.ids)
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
            repaired = await self._call(tier, obs, request, "repair", taken=memory.ids)
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

    # --- one call through the cassette -------------------------------------------------
    async def _call(
        self, tier: Tier, obs: Asker, request: dict[str, Any], purpose: str, account: Account | None = None,
        taken: Collection[str] = (),
    ) -> Reply | None:
        """One call through the cassette, counted on ``account`` (default: the trader's own); ``taken``: the
        tool call ids the conversation already uses.

        None when the call gave up after its retries; ``AgentFailure`` when the API refused this
        conversation or the answer cannot be read; ``FatalPolicyError`` when the account is refused.
        """
        if account is None:
            account = self._account(obs)
        key, size, body = keyed_text(tier.api.name, request)
        entry = self.cassette.get(key)
        if entry is None and tier.replay:
            raise ReplayMiss(
                f"replay: the cassette has no answer for trader {obs.trader} in market {obs.market} at step "
                f"{obs.step} ({purpose}, request {key[:12]}); the run asked something that was not recorded "
                f"(changed scenario, seed, prompts or settings?)"
            )
        if entry is not None:
            self.cassette.keep(entry)
            account.replayed += 1
            live = False
        else:
            entry = await self._live(tier, obs, request, body, key, purpose, account, size)
            live = True
        failure = entry.get("failure")
        if failure:  # recorded as it happened, so a replay fails the same turn the same way
            account.calls += 1
            raise AgentFailure(failure["kind"], failure["reason"])
        if entry.get("error"):
            account.faults["gave_up"] += 1
            return None
        reply = tier.api.parse(entry["response"], taken)
        account.calls += 1
        account.usage += reply.usage
        cost = cost_nanocents(reply.usage, tier.price)
        account.cost += cost
        if live:
            account.spent += cost
        return reply

    async def _live(
        self, tier: Tier, obs: Asker, request: dict[str, Any], body: bytes, key: str, purpose: str,
        account: Account, size: int,
    ) -> dict[str, Any]:
        if self._fatal is not None:
            raise self._fatal
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.concurrency)
        limits = self._limits.setdefault(
            (tier.api.name, tier.settings.base_url, tier.model), ModelLimits.make(tier.settings.rpm, tier.settings.tpm)
        )
        estimate = size // 4 + tier.settings.max_tokens  # tokens, for the per-minute budget

        async def attempt() -> tuple[dict[str, Any], str | None]:
            async with limits.slot(estimate), self._semaphore:
                if self._fatal is not None:
                    raise self._fatal
                if self._transport is not None:
                    answer = await self._transport(tier, request, body)
                else:
                    answer = await tier.api.send(self._clients[tier.name], body)
                self._unreachable[tier.name] = 0
                return answer

        def fault(exc: Retryable) -> None:
            account.faults[exc.kind] += 1
            if isinstance(exc, Unreachable):
                self._unreachable[tier.name] += 1

        where = {"market": obs.market, "trader": obs.trader, "tier": obs.tier, "step": obs.step, "purpose": purpose}
        base = {"kind": "call", "key": key, **where, "api": tier.api.name, "request": request}
        try:
            response, request_id = await with_retries(
                attempt, max_retries=tier.settings.max_retries, initial_wait=self.retry_wait, on_fault=fault
            )
            entry = {**base, "response": response, "request_id": request_id}
        except Unreachable as exc:
            failed = self._unreachable[tier.name]
            if failed < UNREACHABLE_STOP:
                entry = {**base, "error": str(exc)}
            else:  # nothing to record: a resumed run asks again
                if self._fatal is None:
                    self._fatal = FatalPolicyError(
                        f"cannot reach the {tier.api.name} API at {exc.url} ({exc.detail}): {failed} connection "
                        f"failures in a row with no answer; check the network and tiers.{tier.name}.base_url")
                raise self._fatal from None
        except Retryable as exc:
            entry = {**base, "error": str(exc)}
        except AgentFailure as exc:  # the API refused this conversation, or its answer cannot be read
            entry = {**base, "failure": {"kind": exc.kind, "reason": exc.reason}}
        except FatalPolicyError as exc:  # nothing to record: a resumed run asks again
            if self._fatal is None:
                self._fatal = exc
            raise
        self.cassette.append(entry, body)
        return entry

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
        """Close the SDK clients and stop the event loop (idempotent)."""
        if self._loop.is_running():  # the clients' connections belong to the loop: closed on it
            self.run(self._close_clients())
            self._loop.call_soon_threadsafe(self._loop.stop)

    async def _close_clients(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.close()


def context_tokens(settings: TierSettings, where: str = "options.context_tokens") -> int | None:
    """The model's context window a tier declares (``options: {context_tokens: N}``), if it does."""
    value = settings.options.get("context_tokens")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 256 <= value <= 10_000_000:
        raise BackendError(f"{where}: a whole number of tokens from 256 to 10,000,000, got {value!r}")
    return value


def client_timeout(settings: TierSettings) -> httpx2.Timeout:
    """An SDK client's timeouts: the tier's ``timeout`` per call, at most ``CONNECT_TIMEOUT`` to connect."""
    return httpx2.Timeout(settings.timeout, connect=min(settings.timeout, CONNECT_TIMEOUT))


def connection_fault(exc: Exception, url: str) -> Retryable:
    """The fault of an SDK's ``APIConnectionError`` (or its ``APITimeoutError``) on ``url``, by the type of the
    transport error it wraps: an answer that did not come in time is a ``timeout``; anything else (name
    resolution, refused, TLS, a connect timeout, a dropped connection) is ``Unreachable``."""
    cause = exc.__cause__
    if isinstance(cause, httpx2.TimeoutException) and not isinstance(cause, httpx2.ConnectTimeout):
        return Retryable("timeout", "no answer within the timeout")
    return Unreachable(url, f"{type(cause).__name__}: {cause}" if cause is not None else str(exc))


def _results(reply: Reply, errors: dict[str, str]) -> list[tuple[str, str, bool]]:
    """The tool results answering every call of ``reply``: its error, or queued."""
    return [(c.id, errors.get(c.id, prompts.TOOL_QUEUED), c.id in errors) for c in reply.calls]


def read_body(raw: bytes) -> dict[str, Any]:
    """An API answer's JSON body, read with bounds; ``AgentFailure("hostile_json")`` past them."""
    if len(raw) > MAX_RESPONSE_BYTES:
        raise AgentFailure("hostile_json", f"the answer is {len(raw):,} bytes long (at most {MAX_RESPONSE_BYTES:,})")
    try:
        body = orjson.loads(raw)  # 64-bit numbers, nesting at most 1024 deep: a bounded parse
    except orjson.JSONDecodeError as exc:
        raise AgentFailure("hostile_json", f"the answer cannot be read as JSON ({exc.msg})") from None
    if not isinstance(body, dict):
        raise AgentFailure("hostile_json", f"the answer is a JSON {type(body).__name__}, not an object")
    return body


async def post_json(client: Any, path: str, body: bytes) -> tuple[dict[str, Any], str | None]:
    """POST ``body`` (JSON, already encoded) through an official SDK client; (the response, its request id).

    The client still brings its key, base URL, timeout and error classes (``APIStatusError`` ...), but a
    request is not copied and encoded again by ``messages.create``: at 32 calls in flight that work,
    serial on one event loop, was a third of the time. The header asks the SDK (both are generated by
    Stainless) for the raw response, as its ``with_raw_response`` does.
    """
    raw = await client.post(path, cast_to=dict, content=body, options={"headers": RAW_HEADERS})
    return read_body(await raw.read()), raw.request_id


def tool_name(name: Any) -> str:
    """A tool name the APIs accept in a kept assistant message (a model may have written any text)."""
    text = name if isinstance(name, str) else ""
    return text if TOOL_NAME.match(text) else (re.sub(r"[^a-zA-Z0-9_-]", "_", text)[:64] or "unnamed_tool")


def call_ids(ids: Sequence[Any], prefix: str, taken: Collection[str] = ()) -> list[str]:
    """Ids for a reply's tool calls: as given, or made up when missing, malformed or already used in the
    reply or the conversation (``taken``): local servers repeat ``call_0`` and the APIs want them unique."""
    out: list[str] = []
    for given in ids:
        cid = given if isinstance(given, str) and TOOL_NAME.match(given) else ""
        n = len(out)
        while not cid or cid in out or cid in taken:
            cid, n = f"{prefix}{n}", n + 1
        out.append(cid)
    return out


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
    "Account", "AgentFailure", "Api", "Asker", "CassetteError", "FatalPolicyError", "ModelPolicy", "ReplayMiss",
    "Reply", "ToolCall", "Transport", "model_policy", "read_body", "shared_policy",
]
