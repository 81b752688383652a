"""Know the bill before paying it: ``python -m market.run SCENARIO --estimate``.

The week is simulated with no network, no API key and no run folder: every
model-backed tier runs through the real ``ModelPolicy`` (the real prompt builder,
conversation memory, trimming and cache breakpoints), but each request is answered
in process by the tier's own offline profile: the one it would run offline (its
``profile:``, else the profile named like the tier), built in or declared under the
scenario's ``profiles:``. The model's name plays no part: the week takes the course the
offline agents give it, each request is the one the run would send (built by the wire the
tier's backend uses: the full rules and tool schemas, or the compact prompt of a constrained
or local tier, ``agents.llm.constrained``), and the printed estimate names the profile that
stood in for each tier and the prompt it priced. A constrained answer holds one action: the
profile's first.

Tokens are counted from those requests by one rule, stated with the figures:
a request part's UTF-8 compact JSON bytes / 4 (no tokenizer; real tokenizers give
roughly 3-5 bytes per token on English and JSON); the answer schema or grammar of a constrained
request holds the answer, it is not counted as prompt. Each tool-calling answer is assumed to carry a
one-sentence note beside its tool calls (output tokens are the least certain figure:
a real model may write much more). Prompt caching follows the APIs'
documented rules: Anthropic caches the prefix up to each ``cache_control``
breakpoint (found again within 20 blocks, written past the model's minimum
cacheable length); OpenAI-compatible servers cache prefixes from 1,024 tokens in
128-token steps. The cache is assumed not to expire between a trader's turns.
Not counted: repairs and retries (the offline answers are always valid), and the
after-run fairness survey (about one call per model-backed principal with a deal).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any

import orjson
from rich import box
from rich.console import Console
from rich.table import Table

from agents.llm.agent import ModelPolicy
from agents.llm.anthropic_backend import AnthropicApi
from agents.llm.constrained import OPTION, ConstrainedApi
from agents.llm.local_backend import LocalApi, with_local_defaults
from agents.llm.openai_backend import openai_api
from agents.llm.pricing import dollars
from agents.llm.transport import ModelRequest, ModelResponse, ModelTransport
from agents.llm.wire import Api
from agents.offline import OfflinePolicy, resolve_profile
from market.backends import AgentFailure, BackendContext, BackendError, Policy, build_policy
from market.engine import MarketModel
from market.observation import Decision, Observation
from market.randomness import STREAMS, Streams
from market.scenario import ProfileSpec, Scenario, TierSettings, build_participants, load_scenario

TOKEN_RULE = "tokens = UTF-8 bytes of each request part as compact JSON / 4 (no tokenizer)"
MODEL_BACKENDS = ("anthropic", "openai", "local")  # the backends the estimate prices (their requests built here)
NOTE = "I will do this now."  # the short text an answer is assumed to carry beside its tool calls
FREE = {"input": "0", "output": "0"}  # a model served here costs nothing per token
LOOKBACK = 20  # blocks an Anthropic breakpoint looks back for a cached prefix
OPENAI_MIN, OPENAI_STEP = 1024, 128
FULL_PROMPT, COMPACT_PROMPT = "full rules and tool schemas", "compact constrained prompt"


def tier_wire(tier: str, settings: TierSettings) -> tuple[Api, TierSettings, str]:
    """(the wire the tier's backend builds its requests with, the settings it runs the tier with, the prompt those
    requests carry: ``FULL_PROMPT`` or ``COMPACT_PROMPT`` with its answer form)."""
    if settings.backend == "anthropic":
        return AnthropicApi(), settings, FULL_PROMPT
    if settings.backend == "local":
        return LocalApi(), with_local_defaults(settings), f"{COMPACT_PROMPT} ({LocalApi.form})"
    api = openai_api(tier, settings)
    if isinstance(api, ConstrainedApi):
        return api, settings, f"{COMPACT_PROMPT} ({settings.options[OPTION]})"
    return api, settings, FULL_PROMPT


def tokens(data: bytes) -> int:
    """Tokens of one request part by the estimate's rule (see ``TOKEN_RULE``)."""
    return max(1, len(data) // 4)


def _compact(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def openai_prefixes(model: str, request: dict[str, Any]) -> list[tuple[str, int]]:
    """An OpenAI request's prefixes (the tools, then each message): (hash with ``model``, tokens up to it)."""
    digest, total, prefixes = b"", 0, []
    for part in [request.get("tools", []), *request["messages"]]:
        text = _compact(part)
        digest = hashlib.sha256(digest + text).digest()
        total += tokens(text)
        prefixes.append((model + digest.hex(), total))
    return prefixes


@dataclass
class CacheModel:
    """Prompt caching as the APIs document it, per model (prefix hashes seen so far)."""

    seen: set[str] = field(default_factory=set)

    def anthropic(self, model: str, minimum: int, request: dict[str, Any]) -> dict[str, int]:
        """Anthropic usage: uncached input, cache reads and cache writes of ``request``."""
        blocks: list[tuple[Any, bool]] = [(t, "cache_control" in t) for t in request.get("tools", [])]
        blocks += [(b, "cache_control" in b) for b in request.get("system", [])]
        for message in request["messages"]:
            content = message["content"]
            content = [{"type": "text", "text": content}] if isinstance(content, str) else content
            blocks += [({"role": message["role"], **b}, "cache_control" in b) for b in content]
        hashes, sizes, digest, total = [], [], b"", 0
        for block, _ in blocks:
            text = _compact({k: v for k, v in block.items() if k != "cache_control"})
            digest = hashlib.sha256(digest + text).digest()
            total += tokens(text)
            hashes.append(model + digest.hex())
            sizes.append(total)
        marks = [i for i, (_, marked) in enumerate(blocks) if marked]
        read = 0
        for b in marks:
            for j in range(b, max(-1, b - LOOKBACK - 1), -1):
                if hashes[j] in self.seen:
                    read = max(read, sizes[j])
                    break
        for b in marks:
            if sizes[b] >= minimum:
                self.seen.add(hashes[b])
        write = sizes[marks[-1]] - read if marks and sizes[marks[-1]] >= minimum and sizes[marks[-1]] > read else 0
        return {"input_tokens": total - read - write, "cache_read_input_tokens": read,
                "cache_creation_input_tokens": write}

    def openai(self, model: str, request: dict[str, Any]) -> dict[str, Any]:
        """OpenAI usage: prompt tokens (cached ones included) and the cached prefix."""
        prefixes = openai_prefixes(model, request)
        total, best = (prefixes[-1][1] if prefixes else 0), 0
        for key, size in prefixes:
            if key in self.seen:
                best = max(best, size)
        for key, size in prefixes:
            if size >= OPENAI_MIN:
                self.seen.add(key)
        cached = best // OPENAI_STEP * OPENAI_STEP if best >= OPENAI_MIN else 0
        return {"prompt_tokens": total, "prompt_tokens_details": {"cached_tokens": cached}}


class Simulated(ModelTransport):
    """The offline-estimate transport: each request answered in process by its tier's offline profile, in the
    API's format, with usage by the estimate's token rule and the APIs' caching rules (``CacheModel``).
    The profile reads the observation the request was built from (``shown``: a compact one cannot be read back)."""

    def __init__(self, seed: int, streams: Streams) -> None:
        self.seed = seed
        self.streams = streams
        self.policies: dict[str, OfflinePolicy] = {}
        self.shown: dict[tuple[str, str, int], Observation] = {}  # the batch's observations, by market, trader, step
        self.stand_ins: dict[str, str] = {}  # tier -> the offline profile answering it, and where it is from
        self.min_cache_tokens: dict[str, int] = {}  # tier -> its model's minimum cacheable prompt (Anthropic)
        self.cache = CacheModel()
        self._ids = count(1)

    def add(self, tier: str, settings: TierSettings, declared: dict[str, ProfileSpec]) -> None:
        """Answer ``tier``'s requests with its offline profile (``settings.profile``, else the tier's name),
        built in or among the scenario's ``declared`` profiles."""
        name = settings.profile or tier
        try:
            profile = resolve_profile(name, declared, tier)
        except ValueError as exc:
            raise BackendError(f"tiers.{tier}.profile: the estimate answers a model tier with its offline "
                               f"profile: {exc}") from None
        self.policies[tier] = OfflinePolicy(profile, seed=self.seed, streams=self.streams)
        self.stand_ins[tier] = f"{name} ({'declared in the scenario' if name in declared else 'built in'})"

    async def send(self, asked: ModelRequest) -> ModelResponse:
        """The offline profile's decision as the API's answer (request id ``simulated``)."""
        request, where = asked.json, asked.where
        decision = self.policies[asked.tier].decide(self.shown[where["market"], where["trader"], where["step"]])
        calls = [(a.type, a.model_dump(mode="json", exclude={"type"})) for a in decision.actions] or [("pass", {})]
        if asked.api in (ConstrainedApi.name, LocalApi.name):  # the answer's content is its one action
            name, arguments = calls[0]
            content = orjson.dumps({"tool": name, "arguments": arguments}).decode()
            usage = self.cache.openai(asked.model, request)
            return ModelResponse({"choices": [{"message": {"role": "assistant", "content": content},
                                               "finish_reason": "stop"}],
                                  "usage": {**usage, "completion_tokens": tokens(content.encode())}}, "simulated")
        ids = [f"call_{next(self._ids):08d}" for _ in calls]
        if asked.api == "anthropic":
            content = [{"type": "text", "text": NOTE}]
            content += [{"type": "tool_use", "id": i, "name": n, "input": a} for i, (n, a) in zip(ids, calls,
                                                                                                   strict=True)]
            usage = self.cache.anthropic(asked.model, self.min_cache_tokens[asked.tier], request)
            return ModelResponse({"content": content, "stop_reason": "tool_use",
                                  "usage": {**usage, "output_tokens": tokens(_compact(content))}}, "simulated")
        tool_calls = [{"id": i, "type": "function", "function": {"name": n, "arguments": orjson.dumps(a).decode()}}
                      for i, (n, a) in zip(ids, calls, strict=True)]
        usage = self.cache.openai(asked.model, request)
        return ModelResponse({"choices": [{"message": {"role": "assistant", "content": NOTE, "tool_calls": tool_calls},
                                           "finish_reason": "tool_calls"}],
                              "usage": {**usage, "completion_tokens": tokens(_compact([NOTE, *tool_calls]))}},
                             "simulated")



class Observed(Policy):
    """The estimate's ``ModelPolicy`` as the engine asks it: each batch's observations are shown to the stand-ins
    (``Simulated.shown``) before the policy builds its requests from them."""

    def __init__(self, policy: ModelPolicy, simulated: Simulated) -> None:
        self.policy, self.simulated = policy, simulated

    def decide(self, observation: Observation) -> Decision:
        """The policy's decision, its request answered by the stand-in from ``observation``."""
        self._show([observation])
        return self.policy.decide(observation)

    def decide_batch(self, observations: Sequence[Observation]) -> list[Decision | AgentFailure]:
        """The policy's decisions, each request answered by the stand-in from its own observation."""
        self._show(observations)
        return self.policy.decide_batch(observations)

    def _show(self, observations: Sequence[Observation]) -> None:
        self.simulated.shown = {(o.market, o.trader, o.step): o for o in observations}


def plan_scenario(
    scenario_path: Path | str, *, seed: int | None = None, days: int | None = None,
    markets: Sequence[str] | None = None, tiers: dict[str, dict[str, Any]] | None = None,
) -> tuple[Scenario, Path]:
    """The scenario with the command line's overrides (as ``running.runner.plan`` applies them), and its catalog."""
    overrides: dict[str, Any] = {k: v for k, v in (("seed", seed), ("days", days)) if v is not None}
    scenario, catalog = load_scenario(scenario_path, overrides)
    if markets:
        unknown = [m for m in markets if m not in [s.name for s in scenario.markets]]
        if unknown:
            raise ValueError(f"--markets: unknown market {', '.join(unknown)}")
        scenario = scenario.model_copy(update={"markets": [m for m in scenario.markets if m.name in markets]})
    if tiers:
        scenario = scenario.model_copy(update={"tiers": {
            name: settings.model_copy(update=tiers.get(name, {})) for name, settings in scenario.tiers.items()}})
    return scenario, catalog


def estimate(
    scenario_path: Path | str, *, seed: int | None = None, days: int | None = None,
    markets: Sequence[str] | None = None, tiers: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Expected calls, tokens and dollars per model-backed tier for the whole scenario (see the module docstring).

    Returns the ``llm`` section a run's summary.json would have (``tiers``, ``total``, ``models``), plus
    ``token_rule``, ``stand_ins`` (per tier, the offline profile that answered its requests) and ``prompts`` (per
    tier, the prompt its requests carry: ``tier_wire``). Nothing is sent and nothing is written.
    """
    scenario, catalog = plan_scenario(scenario_path, seed=seed, days=days, markets=markets, tiers=tiers)
    context = BackendContext(scenario=scenario)
    simulated = Simulated(scenario.seed, STREAMS[scenario.streams])
    policy = ModelPolicy(context)
    observed = Observed(policy, simulated)
    policies: dict[str, Policy] = {}
    priced: dict[str, str] = {}
    try:
        for tier, settings in scenario.tiers.items():
            if settings.backend == "replay":  # answered from a cassette: free; its offline profile stands in
                simulated.add(tier, settings, scenario.profiles)
                policies[tier] = simulated.policies[tier]
                continue
            if settings.backend not in MODEL_BACKENDS:
                policies[tier] = build_policy(tier, settings, context)
                continue
            if not settings.model:
                raise BackendError(f"tiers.{tier}.model: name the model to estimate for")
            if settings.backend == "local" and "price" not in settings.options:
                settings = settings.model_copy(update={"options": {**settings.options, "price": FREE}})
            simulated.add(tier, settings, scenario.profiles)
            api, settings, priced[tier] = tier_wire(tier, settings)
            policy.add_tier(tier, settings, api, settings.model, simulated)
            simulated.min_cache_tokens[tier] = policy.tiers[tier].price.min_cache_tokens
            policies[tier] = observed
        if policy.tiers:
            MarketModel(scenario, build_participants(scenario, catalog), policies, lambda entries: None).run()
        figures = policy.summary()["llm"]
    finally:
        policy.close()
    return {"scenario": scenario.name, "days": scenario.days, "token_rule": TOKEN_RULE,
            "stand_ins": dict(simulated.stand_ins), "prompts": priced,
            "models": figures["models"], "tiers": figures["tiers"], "total": figures["total"]}


def table(figures: dict[str, Any]) -> Table:
    """The estimate as a table: per tier and model, calls, tokens by kind and dollars."""
    out = Table(title=f"estimate: {figures['scenario']}, {figures['days']} day(s), no calls made",
                caption=f"{TOKEN_RULE};\n{stand_in_line(figures)}; no repairs, retries or survey;\n"
                        f"{prompt_line(figures)}",
                box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False)
    for column in ("tier", "model", "calls", "input", "cache\nread", "cache\nwrite", "output", "dollars"):
        out.add_column(column, justify="left" if column in ("tier", "model") else "right", no_wrap=True)
    rows = [(t, figures["models"][t]["model"], a) for t, a in sorted(figures["tiers"].items())]
    for tier, model, a in [*rows, ("total", "", figures["total"])]:
        out.add_row(tier, model, f"{a['calls']:,}", *(_short(a[k]) for k in (
            "input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens")),
            f"${dollars(a['cost_nanocents']):,.2f}")
    return out


def stand_in_line(figures: dict[str, Any]) -> str:
    """What produced the figures: the offline profile that answered each model tier's requests."""
    tiers = ", ".join(f"{tier} by offline profile {name}" for tier, name in sorted(figures["stand_ins"].items()))
    return f"requests answered in process, {tiers}" if tiers else "no model tier"


def prompt_line(figures: dict[str, Any]) -> str:
    """Which prompt the figures priced, per model tier (the one its backend sends)."""
    tiers = ", ".join(f"{tier}: {prompt}" for tier, prompt in sorted(figures["prompts"].items()))
    return f"prompt priced: {tiers}" if tiers else "no prompt priced"


def _short(n: int) -> str:
    """A token count in a few characters: 9,876 / 98.8k / 98.8M."""
    return f"{n:,}" if n < 10_000 else f"{n / 1e3:.1f}k" if n < 1_000_000 else f"{n / 1e6:.1f}M"


def print_estimate(scenario_path: Path | str, console: Console | None = None, **overrides: Any) -> dict[str, Any]:
    """The ``market.estimators`` entry point behind ``--estimate``: estimate and print the table."""
    figures = estimate(scenario_path, **overrides)
    (console or Console()).print(table(figures))
    if not figures["tiers"]:
        (console or Console()).print("no tier runs on a model backend: nothing to pay")
    return figures
