"""Every request the model policy builds passes the APIs' contracts, in every conversation state.

The validators (``tests/llm/contract.py``) are checked against requests the real services refuse;
then a Hypothesis test plays a model that answers anything a model may answer (valid calls, malformed
ones, cut off at max_tokens, refusals, empty or blank text, repeated ids, 400s, hostile JSON, server
errors) over many turns with a short history (trimming, summarising), repairs and a survey, and
checks every request the policy sends, for both APIs.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections import deque
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.llm.agent import ModelPolicy
from agents.llm.anthropic_backend import AnthropicApi, breakpoints
from agents.llm.cassette import canonical
from agents.llm.openai_backend import OpenAIApi
from agents.llm.ratelimit import Retryable
from agents.llm.survey import SURVEY_TOOL, DealSide, ask, deals_in
from agents.llm.survey import Principal as Asked
from agents.llm.tools import anthropic_tools
from agents.llm.transport import MockTransport, ModelRequest, ModelResponse, ModelTransport
from agents.llm.wire import read_body
from agents.offline import build_policy as offline_policy
from market.backends import AgentFailure, BackendContext, BackendError, FatalPolicyError
from market.engine import MarketModel
from market.observation import Decision, Observation
from market.scenario import TierSettings, build_participants, load_scenario
from tests.llm.conftest import SMOKE
from tests.llm.contract import Refused, check_anthropic, check_openai, openai_error

EPHEMERAL = {"type": "ephemeral"}


def _anthropic(messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"model": "claude-haiku-4-5", "max_tokens": 100, "system": "s", "messages": messages, **extra}


def _text(text: str, cache: bool = False) -> dict[str, Any]:
    return {"type": "text", "text": text, **({"cache_control": EPHEMERAL} if cache else {})}


USE = {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "pass", "input": {}}]}
RESULT = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "queued"}


@pytest.mark.parametrize(("request_", "message"), [
    (_anthropic([{"role": "user", "content": [_text("a", True), _text("b", True), _text("c", True)]}],
                tools=[{**anthropic_tools()[0], "cache_control": EPHEMERAL}],
                system=[_text("rules", True)]),
     "A maximum of 4 blocks with cache_control may be provided. Found 5."),
    (_anthropic([{"role": "user", "content": "hi"}, USE, {"role": "user", "content": [_text("next")]}]),
     "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_1"),
    (_anthropic([{"role": "user", "content": [RESULT, _text("hi")]}]),
     "messages.0.content.0: unexpected `tool_use_id` found in `tool_result` blocks: toolu_1"),
    (_anthropic([{"role": "user", "content": "hi"}, USE, {"role": "user", "content": [_text("x"), RESULT]}]),
     "`tool_result` blocks must come first"),
    (_anthropic([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]),
     'roles must alternate between "user" and "assistant"'),
    (_anthropic([{"role": "assistant", "content": "a"}]), 'first message must use the "user" role'),
    (_anthropic([{"role": "user", "content": [_text("")]}]), "text content blocks must be non-empty"),
    (_anthropic([{"role": "user", "content": [_text("  ")]}]), "must contain non-whitespace text"),
    (_anthropic([{"role": "user", "content": []}]), "messages.0: all messages must have non-empty content"),
    (_anthropic([{"role": "user", "content": "a"}], tools=[{"name": "buy now", "input_schema": {"type": "object"}}]),
     "tools.0.custom.name: String should match pattern"),
    (_anthropic([{"role": "user", "content": "a"}], tools=[{"name": "x", "input_schema": {"type": "array"}}]),
     "tools.0.custom.input_schema.type: Input should be 'object'"),
    ({"model": "m", "messages": [{"role": "user", "content": "a"}]}, "max_tokens: Field required"),
])
def test_the_anthropic_validator_refuses_what_the_api_refuses(request_: dict, message: str) -> None:
    with pytest.raises(Refused, match=_literal(message)):
        check_anthropic(request_)


def _openai(messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-x", "messages": [{"role": "system", "content": "s"}, *messages], **extra}


CALLS = {"role": "assistant", "content": None, "tool_calls": [
    {"id": "call_1", "type": "function", "function": {"name": "pass", "arguments": "{}"}}]}


@pytest.mark.parametrize(("request_", "message", "param"), [
    (_openai([{"role": "user", "content": "a"}, CALLS, {"role": "user", "content": "b"}]),
     "The following tool_call_ids did not have response messages: call_1", "messages.[2].role"),
    (_openai([{"role": "user", "content": "a"}, {"role": "tool", "tool_call_id": "call_9", "content": "x"}]),
     "messages with role 'tool' must be a response to a preceeding message with 'tool_calls'", "messages.[2].role"),
    (_openai([{"role": "user", "content": "a"}, {"role": "assistant", "content": None}]),
     "Invalid value for 'content': expected a string, got null.", "messages.[2].content"),
    (_openai([{"role": "user", "content": "a"}], tools=[{"type": "function", "function": {"name": "buy now"}}]),
     "string does not match pattern", "tools[0].function.name"),
    (_openai([{"role": "user", "content": ""}]), "string too short", "messages.[1].content"),
    ({"model": "gpt-x", "messages": []}, "empty array", "messages"),
])
def test_the_openai_validator_refuses_what_the_api_refuses(request_: dict, message: str, param: str) -> None:
    with pytest.raises(Refused, match=_literal(message)) as caught:
        check_openai(request_)
    assert caught.value.param == param
    body = openai_error(caught.value)["error"]
    assert body["type"] == "invalid_request_error" and body["param"] == param


def test_a_context_window_is_enforced() -> None:
    request = _anthropic([{"role": "user", "content": "x" * 4000}])
    with pytest.raises(Refused, match="exceed context limit"):
        check_anthropic(request, context_tokens=1000)
    with pytest.raises(Refused, match="maximum context length is 1000 tokens") as caught:
        check_openai(_openai([{"role": "user", "content": "x" * 4000}]), context_tokens=1000)
    assert caught.value.code == "context_length_exceeded"


def test_breakpoints_stay_at_two_in_the_messages_whatever_came_in() -> None:
    marked = [{"role": r, "content": [_text(f"{r}{i}", True)]} for i in range(4) for r in ("user", "assistant")]
    out = breakpoints(marked)
    where = [i for i, m in enumerate(out) for b in m["content"] if "cache_control" in b]
    assert where == [4, 6]


def test_hostile_bodies_are_classified_not_parsed() -> None:
    for raw in (b'{"a":' + b"1" * 4301 + b"}", b"[" * 3000 + b"]" * 3000, b"[1]"):
        with pytest.raises(AgentFailure) as caught:
            read_body(raw)
        assert caught.value.kind == "hostile_json"


def _literal(text: str) -> str:
    return "".join("\\" + c if c in ".^$*+?()[]{}|\\" else c for c in text)


# --- the property: every request valid in every state -------------------------------------------------------


@pytest.fixture(scope="module")
def observations() -> list[Observation]:
    """Real observations of the smoke scenario at mid-day (offline traders, nothing written)."""
    scenario, catalog = load_scenario(SMOKE)
    context = BackendContext(scenario=scenario)
    policies = {t: offline_policy(t, s, context) for t, s in scenario.tiers.items()}
    model = MarketModel(scenario, build_participants(scenario, catalog), policies, lambda entries: None)
    model.run(12 * 3600)
    return [t.observe(model.now) for m in model.markets for t in list(m.traders.values())[:3]]


KINDS = ("ok", "offer", "malformed", "unknown", "cut", "cut_text", "refusal", "empty", "blank", "dup_ids",
         "bad_input", "bad_request", "context", "hostile", "retry", "garbage")


class Scripted(ModelTransport):
    """A model that answers each request with the next scripted kind, after checking it against the contract."""

    def __init__(self, api: str, kinds: list[str]) -> None:
        self.api = api
        self.kinds = deque(kinds)
        self.check: Callable[[Any], None] = check_anthropic if api == "anthropic" else check_openai
        self.violations: list[str] = []
        self.requests: list[dict[str, Any]] = []
        self.n = 0

    async def send(self, asked: ModelRequest) -> ModelResponse:
        return ModelResponse(*self.answer_to(asked.json))

    def answer_to(self, request: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """(the answer's body, its request id) for ``request``, or the scripted error raised."""
        self.requests.append(copy.deepcopy(request))
        try:
            self.check(request)
        except Refused as exc:
            self.violations.append(exc.message)
            raise AgentFailure("bad_request", exc.message) from None
        kind = self.kinds.popleft() if self.kinds else "ok"
        self.n += 1
        if kind == "bad_request":
            raise AgentFailure("bad_request", "400 invalid_request_error: scripted")
        if kind == "context":
            raise AgentFailure("context_too_long", "400 prompt is too long: scripted")
        if kind == "retry":
            raise Retryable("server_error", "500 scripted")
        if kind == "garbage":  # a body of the wrong shapes everywhere (some servers answer anything)
            return {"content": "oops", "usage": [1], "stop_reason": 5, "choices": [
                {"message": {"tool_calls": "x", "content": 7, "refusal": 3}, "finish_reason": None}]}, "r"
        if kind == "hostile":
            read_body(b'{"content":[' + b"[" * 3000 + b"]" * 3000 + b"]}")  # raises hostile_json
        survey = any(SURVEY_TOOL in str(t) for t in request.get("tools", []))
        calls, stop, text = self.answer(kind, request, survey)
        return (self.anthropic(calls, stop, text) if self.api == "anthropic" else self.openai(calls, stop, text)), "r"

    def answer(self, kind: str, request: dict[str, Any], survey: bool) -> tuple[list[tuple[Any, Any, Any]], str, str]:
        """(calls as (id, name, input), stop, text) for ``kind``."""
        i = self.n
        if survey:
            first = request["messages"][0 if self.api == "anthropic" else 1]["content"]
            question = first if isinstance(first, str) else "".join(b.get("text", "") for b in first)
            good = {"ratings": [{"deal_id": f["deal_id"], "rating": 5, "comment": "ok"} for f in deals_in(question)]}
            ok = [(f"id{i}", SURVEY_TOOL, good)]
        else:
            ok = [(f"id{i}", "pass", {})]
        offer = [(f"id{i}a", "make_offer", {"listing_id": "L1", "amount": 500}),
                 (f"id{i}b", "send_message", {"listing_id": "L1", "text": "hello"})]
        match kind:
            case "ok":
                return ok, "tool_use", "fine"
            case "offer":
                return offer, "tool_use", ""
            case "malformed":
                return [(f"id{i}", "make_offer", {"listing_id": "L1", "amount": "$5.00"})], "tool_use", ""
            case "unknown":
                return [(f"id{i}", "buy now!", {"listing_id": "L1"})], "tool_use", ""
            case "cut":
                return [*ok, (f"id{i}c", "make_offer", {"listing_id": "L1"})], "max_tokens", ""
            case "cut_text":
                return [], "max_tokens", "I will now"
            case "refusal":
                return [], "refusal", ""
            case "empty":
                return [], "end_turn", ""
            case "blank":
                return [], "end_turn", "   "
            case "dup_ids":
                return [("same", "pass", {}), ("same", "pass", {}), ("", "pass", {})], "tool_use", ""
            case _:  # bad_input
                return [(f"id{i}", "make_offer", [1, 2] if self.api == "anthropic" else "not json")], "tool_use", ""

    @staticmethod
    def anthropic(calls: list[tuple[Any, Any, Any]], stop: str, text: str) -> dict[str, Any]:
        content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
        content += [{"type": "tool_use", "id": c, "name": n, "input": a} for c, n, a in calls]
        return {"content": content, "stop_reason": stop, "usage": {"input_tokens": 10, "output_tokens": 5}}

    @staticmethod
    def openai(calls: list[tuple[Any, Any, Any]], stop: str, text: str) -> dict[str, Any]:
        finish = {"max_tokens": "length", "tool_use": "tool_calls", "end_turn": "stop", "refusal": "stop"}[stop]
        message: dict[str, Any] = {"role": "assistant", "content": text or None,
                                   "refusal": "no" if stop == "refusal" else None}
        if calls:
            message["tool_calls"] = [{"id": c, "type": "function", "function": {
                "name": n, "arguments": a if isinstance(a, str) else json.dumps(a)}} for c, n, a in calls]
        return {"choices": [{"message": message, "finish_reason": finish}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5}}


def _policy(api: str, script: Scripted, history: int) -> ModelPolicy:
    scenario, _ = load_scenario(SMOKE)
    policy = ModelPolicy(BackendContext(scenario=scenario, options={"retry_wait": 0}))
    settings_ = TierSettings(backend=api, model="claude-haiku-4-5", history_turns=history, max_retries=1)
    for tier in scenario.tiers:
        wire = AnthropicApi() if api == "anthropic" else OpenAIApi()
        policy.add_tier(tier, settings_, wire, "claude-haiku-4-5", script)
    return policy


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(api=st.sampled_from(["anthropic", "openai"]), kinds=st.lists(st.sampled_from(KINDS), max_size=40),
       history=st.integers(1, 4), turns=st.integers(1, 8))
def test_every_request_built_is_valid_in_every_state(
    observations: list[Observation], api: str, kinds: list[str], history: int, turns: int
) -> None:
    script = Scripted(api, kinds)
    policy = _policy(api, script, history)
    try:
        for turn in range(turns):
            batch = [observations[(turn + k) % len(observations)] for k in range(2)]
            for result in policy.decide_batch(batch):
                assert isinstance(result, Decision | AgentFailure)
        first = batch[0]
        sides = [DealSide(first.market, f"D{k}", first.trader, "Ann", first.tier, "buyer", "lamp", 900, 1200, 1000)
                 for k in range(2)]
        outcome = policy.run(ask(policy, sides, policy._account(Asked(first.market, first.trader, first.tier))))
        assert len(outcome.ratings) + len(outcome.missing) == 2
    finally:
        policy.close()
    assert script.violations == []
    assert script.requests  # something was asked


def test_a_cut_off_answer_is_not_acted_on_even_when_valid(observations: list[Observation]) -> None:
    # the cut answer's first call validates (pass) and the second is cut mid-input; the repair gives an offer
    script = Scripted("anthropic", ["cut", "offer"])
    policy = _policy("anthropic", script, 4)
    try:
        decision = policy.decide(observations[0])
    finally:
        policy.close()
    assert [a.type for a in decision.actions] == ["make_offer", "send_message"]  # only the repair's calls
    repair = script.requests[1]["messages"][-1]["content"]
    assert all(b["is_error"] for b in repair if b["type"] == "tool_result") and len(repair) == 3
    assert policy.accounts[(observations[0].market, observations[0].tier, observations[0].trader)].faults[
        "cut_off"] == 1


@pytest.mark.parametrize(("kinds", "kind"), [
    (["cut", "cut"], "cut_off"), (["malformed", "malformed"], "unrepairable_tool_call"),
    (["bad_request"], "bad_request"), (["context"], "context_too_long"), (["hostile"], "hostile_json"),
])
@pytest.mark.parametrize("api", ["anthropic", "openai"])
def test_a_failed_turn_is_the_traders_alone_and_resets_its_conversation(
    observations: list[Observation], api: str, kinds: list[str], kind: str
) -> None:
    obs, other = observations[0], observations[1]
    script = Scripted(api, ["ok", "ok", *kinds])  # the second turn of ``obs`` fails
    policy = _policy(api, script, 4)
    try:
        policy.decide_batch([obs])
        first = policy.decide_batch([other])[0]
        assert isinstance(first, Decision)
        failed = policy.decide_batch([obs])[0]
        assert isinstance(failed, AgentFailure) and failed.kind == kind
        assert isinstance(policy.decide_batch([obs])[0], Decision)  # the next turn starts afresh
    finally:
        policy.close()
    fresh = script.requests[-1]["messages"]
    users = [m for m in fresh if m["role"] == "user"]
    assert len(users) == 1 and f"failed ({kind})" in str(users[0]["content"])
    account = policy.accounts[(obs.market, obs.tier, obs.trader)]
    assert account.failures == {kind: 1}
    assert script.violations == []


def test_an_account_error_stops_the_batch_after_its_calls_are_answered(observations: list[Observation]) -> None:
    refused = FatalPolicyError("anthropic API: authentication failed; check ANTHROPIC_API_KEY")
    answered: list[str] = []

    async def handler(asked: ModelRequest) -> ModelResponse:
        if f"participant id {observations[0].principal.id})" in str(asked.json["system"]) and not answered:
            answered.append("refused")
            raise refused
        answered.append("ok")
        return ModelResponse(Scripted.anthropic([("t1", "pass", {})], "tool_use", ""), "r")

    scenario, _ = load_scenario(SMOKE)
    policy = ModelPolicy(BackendContext(scenario=scenario))
    for tier in scenario.tiers:
        policy.add_tier(tier, TierSettings(backend="anthropic", model="claude-haiku-4-5"), AnthropicApi(),
                        "claude-haiku-4-5", MockTransport(handler))
    try:
        with pytest.raises(FatalPolicyError, match="authentication failed"):
            policy.decide_batch(observations[:4])
        with pytest.raises(FatalPolicyError):  # nothing more is sent once the account is refused
            policy.decide_batch(observations[:1])
    finally:
        policy.close()
    assert answered.count("refused") == 1


def test_a_traders_request_goes_out_before_the_answer_that_freed_its_slot_is_worked_on(
    observations: list[Observation],
) -> None:
    """The next trader's turn starts when a call has its answer, before that answer is read into its turn (no
    timing: what each request sees already counted), and calls in flight stay within ``--concurrency``."""
    scenario, _ = load_scenario(SMOKE)
    counted: list[int] = []  # calls already read into their turns when each request was sent
    in_flight: list[int] = [0, 0]  # now, most

    async def handler(asked: ModelRequest) -> ModelResponse:
        counted.append(sum(a.calls for a in policy.accounts.values()))
        in_flight[0] += 1
        in_flight[1] = max(in_flight)
        await asyncio.sleep(0)  # others may send meanwhile
        in_flight[0] -= 1
        return ModelResponse(Scripted.anthropic([("t1", "pass", {})], "tool_use", ""), "r")

    for concurrency, expected in ((1, [0, 0, 1]), (2, None)):
        policy = ModelPolicy(BackendContext(scenario=scenario, options={"concurrency": concurrency}))
        for tier in scenario.tiers:
            policy.add_tier(tier, TierSettings(backend="anthropic", model="claude-haiku-4-5"), AnthropicApi(),
                            "claude-haiku-4-5", MockTransport(handler))
        counted.clear()
        in_flight[:] = [0, 0]
        try:
            decisions = policy.decide_batch(observations)
        finally:
            policy.close()
        assert all(isinstance(d, Decision) for d in decisions) and len(counted) == len(observations) == 3
        assert in_flight[1] == concurrency
        if expected is not None:
            assert counted == expected  # (one at a time, each answer read only after the next request left)


def test_a_context_window_drops_old_turns_then_fails_the_turn(observations: list[Observation]) -> None:
    script = Scripted("openai", [])
    scenario, _ = load_scenario(SMOKE)
    policy = ModelPolicy(BackendContext(scenario=scenario))
    fits = TierSettings(backend="openai", model="claude-haiku-4-5", max_tokens=256, options={"context_tokens": 4000})
    tiny = fits.model_copy(update={"options": {"context_tokens": 300}})
    policy.add_tier("frontier", fits, OpenAIApi(), "claude-haiku-4-5", script)
    policy.add_tier("small", tiny, OpenAIApi(), "claude-haiku-4-5", script)
    big = next(o for o in observations if o.tier == "frontier")
    small = next(o for o in observations if o.tier == "small")
    try:
        for _ in range(6):
            assert isinstance(policy.decide_batch([big])[0], Decision)
        failed = policy.decide_batch([small])[0]
    finally:
        policy.close()
    sizes = [len(canonical(r)) // 4 for r in script.requests]
    assert all(size + 256 <= 4000 for size in sizes), sizes  # old turns were dropped to fit (each adds ~600)
    users = [len([m for m in r["messages"] if m["role"] == "user"]) for r in script.requests]
    assert users[:2] == [1, 2] and max(users) < 6 and "Earlier turns, summarised" in str(script.requests[-1])
    assert isinstance(failed, AgentFailure) and failed.kind == "context_too_long" and len(script.requests) == 6
    with pytest.raises(BackendError, match=r"tiers\.small\.options\.context_tokens"):
        policy.add_tier("small", fits.model_copy(update={"options": {"context_tokens": "8k"}}), OpenAIApi(),
                        "claude-haiku-4-5", script)
