"""The model-backed policy: turns observations into tool calls and tool calls into actions.

One ``ModelPolicy`` serves every model-backed tier of a run (each tier's factory
returns the same object), so a batch's calls for all tiers run together on one
event loop, bounded by ``--concurrency`` and per-model rate limits. Per trader it
keeps a bounded conversation (the last ``history_turns`` turns; older ones are
summarised as the actions taken). A malformed tool call gets its validation error
and one repair attempt, then is counted and skipped; a refusal or an empty answer
is a ``pass``. Every call goes through the cassette: a recorded request is
answered from it (free, no network), a new one is sent and appended.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
import weakref
from collections import Counter
from collections.abc import Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import orjson

from agents.interview import interview, write_instructions
from agents.llm import prompts
from agents.llm.cassette import Cassette, CassetteError, keyed_text
from agents.llm.pricing import Price, Usage, cost_microcents, dollars, lookup, price_from, table
from agents.llm.ratelimit import ModelLimits, Retryable, with_retries
from agents.llm.tools import ToolCallError, to_action
from market.actions import Action, Pass
from market.backends import BackendContext, BackendError
from market.observation import Decision, Observation
from market.scenario import TierSettings

ROUTER_KEY = "_model_policy"
RAW_HEADERS = {"X-Stainless-Raw-Response": "raw", "Content-Type": "application/json"}
T = TypeVar("T")
# the open policy of each run folder, so an after-run step (the fairness survey) asks through the same
# client, limits and cassette; a closed policy leaves it
LIVE: weakref.WeakValueDictionary[Path, ModelPolicy] = weakref.WeakValueDictionary()


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
    """One wire format (Anthropic Messages, OpenAI chat completions)."""

    name: str

    def request(self, settings: TierSettings, model: str, system: str, messages: list[dict[str, Any]]) -> dict: ...
    def user(self, results: Sequence[tuple[str, str, bool]], text: str, cache: bool) -> list[dict[str, Any]]: ...
    def cached(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]: ...
    def parse(self, response: dict[str, Any]) -> Reply: ...
    def client(self, settings: TierSettings) -> Any: ...
    async def send(self, client: Any, body: bytes) -> tuple[dict[str, Any], str | None]:
        """POST one request, ``body`` its canonical JSON; returns (the response, its request id)."""
        ...


class ReplayMiss(BackendError):
    """A request the cassette does not hold, in replay mode."""


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

    def render(self, api: Api) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        for i, turn in enumerate(self.turns):
            text = turn.text
            if i == 0 and self.digest:
                text = "Earlier turns, summarised: " + "; ".join(self.digest[-30:]) + "\n\n" + text
            messages += api.user(turn.lead if i else [], text, cache=False)
            messages += turn.rest
        # a breakpoint where the previous request ended, so its cached prefix is found whatever the
        # number of blocks (tool calls and results) between it and this turn's breakpoint
        return api.cached(messages)

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
    cost: int = 0  # micro-cents, all calls of the run
    spent: int = 0  # micro-cents, calls sent by this process
    faults: Counter[str] = field(default_factory=Counter)

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
        return out

    def as_dict(self) -> dict[str, Any]:
        total_in = self.usage.total_input
        return {
            "calls": self.calls, "replayed_calls": self.replayed, **self.usage.as_dict(),
            "cache_share": round(self.usage.cache_read / total_in, 4) if total_in else 0.0,
            "cost_microcents": self.cost, "cost_usd": round(dollars(self.cost), 6),
            "spent_usd": round(dollars(self.spent), 6), "faults": dict(sorted(self.faults.items())),
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


class ModelPolicy:
    """Every model-backed tier of one run; see the module docstring."""

    def __init__(self, context: BackendContext) -> None:
        self.context = context
        self.tiers: dict[str, Tier] = {}
        self.concurrency = int(context.options.get("concurrency", 16))
        self.retry_wait = float(context.options.get("retry_wait", 1.0))
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
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="model-calls", daemon=True)
        self._thread.start()
        self._semaphore: asyncio.Semaphore | None = None
        self._clients: dict[str, Any] = {}  # one SDK client per tier, made at set-up, closed with the policy

    # --- set-up --------------------------------------------------------------
    def add_tier(self, tier: str, settings: TierSettings, api: Api, model: str, replay: bool = False) -> None:
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
        if not replay:
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
        LIVE[run_dir.resolve()] = self
        own = run_dir / "cassette.jsonl"
        if self.source is not None and self.source.resolve() != own.resolve() and not own.exists():
            shutil.copyfile(self.source, own)  # a replayed run carries its own copy
        self.cassette = Cassette(own, source=self.source)
        for tier in getattr(self, "tiers", {}).values():
            self._write_tier(tier)

    def configure(self, concurrency: int | None = None) -> None:
        if concurrency:
            self.concurrency = concurrency

    # --- deciding ------------------------------------------------------------
    def decide(self, observation: Observation) -> Decision:
        return self.decide_batch([observation])[0]

    def decide_batch(self, observations: Sequence[Observation]) -> list[Decision]:
        """All decisions of one batch, called concurrently; returned in input order."""
        future = asyncio.run_coroutine_threadsafe(self._batch(list(observations)), self._loop)
        return future.result()

    async def _batch(self, observations: list[Observation]) -> list[Decision]:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.concurrency)
        # one trader's observations (the engine can wake a trader twice in a batch) run in order, since
        # each turn extends that trader's conversation; different traders run concurrently
        results: list[Decision | None] = [None] * len(observations)
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

        await asyncio.gather(*(in_order(ix) for ix in groups.values()))
        return results  # type: ignore[return-value]

    def _system(self, obs: Observation) -> str:
        """The trader's system text (its principal interviewed on first use, instructions written)."""
        pid = obs.principal.id
        if pid not in self.instructions:
            self.instructions[pid] = interview(obs.principal).instructions
            if self.run_dir is not None:
                write_instructions(self.run_dir, obs.principal)
        principal, system = self._systems.get(pid, (None, ""))
        if principal is not obs.principal:  # the same object all run long, unless the principal changed
            system = prompts.system_text(obs.principal, self.instructions[pid])
            self._systems[pid] = (obs.principal, system)
        return system

    async def _decide(self, obs: Observation) -> Decision:
        tier = self.tiers[obs.tier]
        account = self._account(obs)
        memory = self.memory.setdefault((obs.market, obs.trader), Memory())
        system = self._system(obs)
        text = prompts.observation_text(obs)
        history = memory.render(tier.api)
        lead = memory.pending if memory.turns else []
        messages = history + tier.api.user(lead, text, cache=True)
        reply = await self._call(tier, obs, tier.api.request(tier.settings, tier.model, system, messages), "turn")
        if reply is None:  # gave up after retries: a pass; the conversation is left as it was
            return Decision(actions=(Pass(),), note="model call failed")
        actions, errors = self._convert(reply, account)
        rest, final = [reply.assistant], reply
        if errors:
            results = [(c.id, errors.get(c.id, prompts.TOOL_QUEUED), c.id in errors) for c in reply.calls]
            request = tier.api.request(
                tier.settings, tier.model, system, messages + rest + tier.api.user(results, prompts.REPAIR_TEXT, True)
            )
            account.faults["repair_attempts"] += 1
            repaired = await self._call(tier, obs, request, "repair")
            if repaired is None:  # the repair call failed: the bad calls are skipped, the exchange forgotten
                account.faults["skipped_calls"] += len(errors)
            else:
                more, still = self._convert(repaired, account)
                account.faults["skipped_calls"] += len(still)
                actions += more
                rest += [*tier.api.user(results, prompts.REPAIR_TEXT, False), repaired.assistant]
                final, errors = repaired, still
        memory.turns.append(Turn(text=text, lead=lead, rest=rest, summary=_summary_of(actions, obs.step)))
        memory.pending = [(c.id, errors.get(c.id, prompts.TOOL_QUEUED), c.id in errors) for c in final.calls]
        memory.trim(tier.settings.history_turns)
        note = final.text[:500] or None
        return Decision(actions=tuple(actions) or (Pass(),), note=note)

    def _convert(self, reply: Reply, account: Account) -> tuple[list[Action], dict[str, str]]:
        if reply.stop == "max_tokens":
            account.faults["max_tokens"] += 1
        if reply.stop == "refusal":
            account.faults["refusals"] += 1
            return [], {}
        if not reply.calls:
            account.faults["empty_answers"] += 1
        actions, errors = [], {}
        for call in reply.calls:
            try:
                actions.append(to_action(call.name, call.arguments))
            except ToolCallError as exc:
                errors[call.id] = f"error: {exc}"
                account.faults["malformed_calls"] += 1
        return actions, errors

    # --- one call through the cassette -------------------------------------------------
    async def _call(
        self, tier: Tier, obs: Asker, request: dict[str, Any], purpose: str, account: Account | None = None
    ) -> Reply | None:
        """One call through the cassette, counted on ``account`` (default: the trader's own)."""
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
        if entry.get("error"):
            account.faults["gave_up"] += 1
            return None
        reply = tier.api.parse(entry["response"])
        account.calls += 1
        account.usage += reply.usage
        cost = cost_microcents(reply.usage, tier.price)
        account.cost += cost
        if live:
            account.spent += cost
        return reply

    async def _live(
        self, tier: Tier, obs: Asker, request: dict[str, Any], body: bytes, key: str, purpose: str,
        account: Account, size: int,
    ) -> dict[str, Any]:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.concurrency)
        limits = self._limits.setdefault(
            (tier.api.name, tier.settings.base_url, tier.model), ModelLimits.make(tier.settings.rpm, tier.settings.tpm)
        )
        estimate = size // 4 + tier.settings.max_tokens  # tokens, for the per-minute budget

        async def attempt() -> tuple[dict[str, Any], str | None]:
            async with limits.slot(estimate), self._semaphore:
                return await tier.api.send(self._clients[tier.name], body)

        def fault(exc: Retryable) -> None:
            account.faults[exc.kind] += 1

        where = {"market": obs.market, "trader": obs.trader, "tier": obs.tier, "step": obs.step, "purpose": purpose}
        try:
            response, request_id = await with_retries(
                attempt, max_retries=tier.settings.max_retries, initial_wait=self.retry_wait, on_fault=fault
            )
            entry = {"kind": "call", "key": key, **where, "api": tier.api.name, "request": request,
                     "response": response, "request_id": request_id}
        except Retryable as exc:
            entry = {"kind": "call", "key": key, **where, "api": tier.api.name, "request": request,
                     "error": str(exc)}
        self.cassette.append(entry, body)
        return entry

    def _account(self, obs: Asker) -> Account:
        return self.accounts.setdefault((obs.market, obs.tier, obs.trader), Account())

    # --- reporting -----------------------------------------------------------
    @property
    def cost_usd(self) -> float:
        return dollars(sum(a.cost for a in self.accounts.values()))

    def summary(self) -> dict[str, Any]:
        """Tokens, cost and faults per tier, per market and tier, and per trader (merged into summary.json)."""
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
        for path in [p for p, policy in LIVE.items() if policy is self]:
            LIVE.pop(path, None)
        if self._loop.is_running():  # the clients' connections belong to the loop: closed on it
            self.run(self._close_clients())
        self._loop.call_soon_threadsafe(self._loop.stop)

    async def _close_clients(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.close()


async def post_json(client: Any, path: str, body: bytes) -> tuple[dict[str, Any], str | None]:
    """POST ``body`` (JSON, already encoded) through an official SDK client; (the response, its request id).

    The client still brings its key, base URL, timeout and error classes (``APIStatusError`` ...), but a
    request is not copied and encoded again by ``messages.create``: at 32 calls in flight that work,
    serial on one event loop, was a third of the time. The header asks the SDK (both are generated by
    Stainless) for the raw response, as its ``with_raw_response`` does.
    """
    raw = await client.post(path, cast_to=dict, content=body, options={"headers": RAW_HEADERS})
    return orjson.loads(await raw.read()), raw.request_id


def shared_policy(context: BackendContext) -> ModelPolicy:
    """The run's one ``ModelPolicy`` (created on first use, kept in the context's options)."""
    policy = context.options.get(ROUTER_KEY)
    if policy is None:
        policy = ModelPolicy(context)
        context.options[ROUTER_KEY] = policy
    return policy


__all__ = [
    "LIVE", "Account", "Api", "Asker", "CassetteError", "ModelPolicy", "ReplayMiss", "Reply", "ToolCall",
    "shared_policy",
]
