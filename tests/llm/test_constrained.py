"""Constrained answers (``agents.llm.constrained``): the request, the schema and grammar, the compact prompt,
reading an answer back, and a policy turn through it; no server (``tests/local`` runs the real one)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from agents.llm import constrained, prompts
from agents.llm.agent import ModelPolicy
from agents.llm.constrained import (
    COMPACT_RULES,
    ROLES,
    ConstrainedApi,
    action_grammar,
    action_schema,
    compact_user_text,
    referents,
)
from agents.llm.local_backend import LocalApi, request_seed
from agents.llm.openai_backend import OpenAIApi
from agents.llm.openai_backend import build_policy as openai_policy
from agents.llm.tools import ToolCallError, to_action, tool_names, tool_specs
from agents.llm.transport import MockTransport, ModelRequest, ModelResponse
from market.actions import ListItem, MakeOffer
from market.backends import BackendContext, BackendError
from market.domain import Item, Listing, Participant, Want
from market.events import ItemListed, ParticipantJoined, Rules
from market.observation import observe
from market.scenario import TierSettings, load_scenario
from market.state import MarketState

ROOT = Path(__file__).resolve().parents[2]


def _people() -> tuple[Participant, Participant]:
    lamp = Item(id="p1-i1", kind="lamp", title="Desk lamp", category="home", value=2000)
    mug = Item(id="p2-i1", kind="mug", title="Mug", category="home", value=800)
    seller = Participant(id="p1", name="Ada Fox", budget=10_000, items=(lamp,), reserves={"p1-i1": 1200},
                         wants=(Want(kind="mug", title="Mug", max_price=900),))
    buyer = Participant(id="p2", name="Bo Lee", budget=10_000, items=(mug,), reserves={"p2-i1": 500},
                        wants=(Want(kind="lamp", title="Desk lamp", max_price=2500),))
    return seller, buyer


def _answer(content: str, finish: str = "stop") -> dict[str, Any]:
    return {"choices": [{"message": {"role": "assistant", "content": content}, "finish_reason": finish}],
            "usage": {"prompt_tokens": 900, "completion_tokens": 30}}


def test_the_schema_is_one_of_the_ten_actions_without_bounds_a_grammar_cannot_hold() -> None:
    schema = action_schema()
    assert [v["properties"]["tool"]["const"] for v in schema["oneOf"]] == list(tool_names())
    assert all(v["required"] == ["tool", "arguments"] for v in schema["oneOf"])
    text = json.dumps(schema)
    assert "maxLength" not in text and "minLength" not in text and "pattern" not in text


@pytest.mark.parametrize("form", ["json_schema", "json_object", "gbnf"])
def test_a_constrained_request_has_no_tools_and_holds_the_answer(form: str) -> None:
    settings = TierSettings(backend="openai", model="m", options={"constrained": form})
    body = ConstrainedApi().request(settings, "m", "per-trader text", [{"role": "user", "content": "hello"}])
    assert "tools" not in body and "tool_choice" not in body
    assert body["messages"][0] == {"role": "system", "content": COMPACT_RULES + "\n\nper-trader text"}
    if form == "gbnf":
        assert body["grammar"] == action_grammar() and "response_format" not in body
    elif form == "json_object":
        assert body["response_format"] == {"type": "json_object", "schema": action_schema()}
    else:
        assert body["response_format"]["json_schema"]["schema"] == action_schema()


def test_the_local_backend_sends_the_grammar_and_a_seed() -> None:
    settings = TierSettings(backend="local", model="smollm2-135m", options={"seed": 5})
    body = LocalApi().request(settings, "smollm2-135m", "s", [{"role": "user", "content": "x"}])
    assert body["grammar"] == action_grammar() and body["seed"] == request_seed(5, body) and "tools" not in body


def test_the_grammar_is_read_by_llama_cpp() -> None:
    grammar = pytest.importorskip("llama_cpp.llama_grammar", reason="llama-cpp-python is not installed")
    grammar.LlamaGrammar.from_string(action_grammar(), verbose=False)
    # amounts are whole cents from 1: no sign, no leading zero, no fraction
    assert "cents ::= [1-9] [0-9]?" in action_grammar()


def test_the_rules_a_constrained_prompt_states_come_from_the_scenario() -> None:
    seller, _ = _people()
    settings = TierSettings(backend="openai", model="m", options={"constrained": "json_schema"})

    def system(rules: Rules) -> str:
        text = prompts.system_text(seller, "Be brief.", rules)
        return ConstrainedApi().request(settings, "m", text, [])["messages"][0]["content"]

    assert "stays open for 6 hours" in system(Rules(offer_ttl=6 * 3600))
    assert "stays open for 1 day" in system(Rules())
    assert "does not enforce" in system(Rules(enforce_mandate=False))
    for name in tool_names():  # every action is named, with its fields
        assert f"- {name} {{" in COMPACT_RULES


def test_the_observation_goes_compact_and_names_what_a_trader_acts_on() -> None:
    seller, buyer = _people()
    state = MarketState.replay([ParticipantJoined(at=0, participant=p) for p in (seller, buyer)])
    obs = observe(state, "A", "p1", "small", 9 * 3600, 0, [])
    full = "Earlier turns, summarised: turn 0: pass\n\n" + prompts.observation_text(obs)
    compact = compact_user_text(full)
    assert compact.startswith("Earlier turns, summarised: turn 0: pass\n\nMarket A, day 1, 09:00.")
    body = json.loads(compact.split("<observation>\n", 1)[1].split("\n</observation>", 1)[0])
    assert body == {"available": 10_000, "held_in_offers": 0,
                    "unlisted_items": [{"item_id": "p1-i1", "title": "Desk lamp", "value": 2000}],
                    "wants": [{"title": "Mug", "max_price": 900}]}
    assert len(compact) < 0.7 * len(full)
    assert compact_user_text(prompts.REPAIR_TEXT) == prompts.REPAIR_TEXT


def test_each_observation_is_made_compact_once_however_often_it_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    # every request sends the kept turns again, and context fitting builds a turn's request more than once
    seller, buyer = _people()
    state = MarketState.replay([ParticipantJoined(at=0, participant=p) for p in (seller, buyer)])
    texts = [prompts.observation_text(observe(state, "A", "p1", "small", (9 + h) * 3600 + 17, 0, []))
             for h in range(2)]  # seconds no other test uses: not made compact before
    made: list[dict[str, Any]] = []
    compact = constrained.compact_observation

    def counted(payload: dict[str, Any]) -> dict[str, Any]:
        made.append(payload)
        return compact(payload)

    monkeypatch.setattr(constrained, "compact_observation", counted)
    settings = TierSettings(backend="openai", model="m", options={"constrained": "json_schema"})
    conversation = [{"role": "user", "content": texts[0]}, {"role": "assistant", "content": "{}"},
                    {"role": "user", "content": texts[1]}]
    bodies = [ConstrainedApi().request(settings, "m", "s", conversation) for _ in range(3)]
    assert len(made) == 2 and bodies[0] == bodies[2]
    # the schema is built once per set of ids and shared by the requests that hold them
    schema = bodies[0]["response_format"]["json_schema"]["schema"]
    assert schema is bodies[2]["response_format"]["json_schema"]["schema"]


def test_an_answer_is_read_back_as_one_tool_call() -> None:
    api = ConstrainedApi()
    content = '{"tool": "make_offer", "arguments": {"listing_id": "L1", "amount": 1200}}'
    reply = api.parse(_answer(content))
    [call] = reply.calls
    assert to_action(call.name, call.arguments) == MakeOffer(listing_id="L1", amount=1200)
    assert reply.stop == "tool_use" and reply.usage.input == 900 and reply.usage.output == 30
    assert reply.assistant == {"role": "assistant", "content": content}  # kept as the model wrote it
    # ids are fresh in the conversation
    again = api.parse(_answer('{"tool": "pass", "arguments": {}}'), taken={call.id})
    assert again.calls[0].id != call.id
    # a server that ignored the constraint: a call of no tool, refused with the list of tools (repaired once)
    [bad] = api.parse(_answer("I would like to sell my lamp.")).calls
    with pytest.raises(ToolCallError, match="unknown tool"):
        to_action(bad.name, bad.arguments)
    assert api.parse(_answer("")).calls == () and api.parse(_answer("")).stop == "end_turn"
    assert api.parse(_answer('{"tool": "pass", "argu', "length")).stop == "max_tokens"


def test_results_go_back_as_text_in_the_next_user_message() -> None:
    messages = ConstrainedApi().user([("answer_0", "error: make_offer.amount: too low", True)], "next")
    assert messages == [{"role": "user", "content": "Your last action: error: make_offer.amount: too low\nnext"}]


def test_the_openai_option_is_checked_and_picks_the_constrained_wire(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    scenario, _ = load_scenario(ROOT / "scenarios" / "smoke.yaml")
    price = {"input": "0", "output": "0"}
    bad = TierSettings(backend="openai", model="m", base_url="http://127.0.0.1:9/v1",
                       options={"constrained": "regex", "price": price})
    with pytest.raises(BackendError, match=r"tiers\.small\.options\.constrained: one of json_schema, json_object"):
        openai_policy("small", bad, BackendContext(scenario=scenario))
    for options, api in (({"constrained": "json_schema", "price": price}, ConstrainedApi),
                         ({"price": price}, OpenAIApi)):
        settings = TierSettings(backend="openai", model="m", base_url="http://127.0.0.1:9/v1", options=options)
        policy = openai_policy("small", settings, BackendContext(scenario=scenario))
        try:
            assert type(policy.tiers["small"].api) is api
        finally:
            policy.close()


def test_a_policy_turn_through_the_constrained_wire_is_the_action_the_answer_names() -> None:
    seller, buyer = _people()
    scenario, _ = load_scenario(ROOT / "scenarios" / "smoke.yaml")
    seen: list[dict[str, Any]] = []

    async def model(asked: ModelRequest) -> ModelResponse:
        request = asked.json
        seen.append(request)
        text = request["messages"][-1]["content"]
        shown = orjson.loads(text.split("<observation>\n", 1)[1].split("\n</observation>", 1)[0])
        item = shown["unlisted_items"][0]  # reads the compact observation like a model would
        answer = {"tool": "list_item", "arguments": {"item_id": item["item_id"], "ask": item["value"]}}
        return ModelResponse(_answer(json.dumps(answer)), None)

    policy = ModelPolicy(BackendContext(scenario=scenario))
    try:
        settings = TierSettings(backend="openai", model="m", options={"constrained": "gbnf",
                                                                       "price": {"input": "0", "output": "0"}})
        policy.add_tier("small", settings, ConstrainedApi(), "m", MockTransport(model))
        state = MarketState.replay([ParticipantJoined(at=0, participant=p) for p in (seller, buyer)])
        decision = policy.decide(observe(state, "A", "p1", "small", 9 * 3600, 0, []))
    finally:
        policy.close()
    assert decision.actions == (ListItem(item_id="p1-i1", ask=2000),)
    assert "grammar" in seen[0] and "tools" not in seen[0]


def test_a_tiers_transport_is_composed_once_around_the_runs_cassette(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    seller, buyer = _people()
    scenario, _ = load_scenario(ROOT / "scenarios" / "smoke.yaml")
    composed: list[str] = []
    compose = ModelPolicy.compose

    def counted(self: ModelPolicy, tier: Any) -> Any:
        composed.append(tier.name)
        return compose(self, tier)

    async def model(asked: ModelRequest) -> ModelResponse:
        return ModelResponse(_answer('{"tool": "pass", "arguments": {}}'), None)

    monkeypatch.setattr(ModelPolicy, "compose", counted)
    policy = ModelPolicy(BackendContext(scenario=scenario))
    try:
        settings = TierSettings(backend="openai", model="m", options={"constrained": "gbnf",
                                                                       "price": {"input": "0", "output": "0"}})
        policy.add_tier("small", settings, ConstrainedApi(), "m", MockTransport(model))
        policy.open_run(tmp_path)
        state = MarketState.replay([ParticipantJoined(at=0, participant=p) for p in (seller, buyer)])
        for trader in ("p1", "p2"):
            policy.decide(observe(state, "A", trader, "small", 9 * 3600, 0, []))
    finally:
        policy.close()
    assert composed == ["small"]
    kinds = [orjson.loads(line)["kind"] for line in (tmp_path / "cassette.jsonl").read_bytes().splitlines()]
    assert kinds == ["tier", "call", "call"]  # the calls were recorded in the run's own cassette


def test_a_forced_tools_answer_is_read_as_openais_and_answered_with_tool_messages() -> None:
    # the fairness survey forces its rate_deals tool on every model tier, a constrained one too
    api = ConstrainedApi()
    call = {"id": "call_1", "type": "function", "function": {"name": "rate_deals", "arguments": '{"ratings": []}'}}
    response = {"choices": [{"message": {"role": "assistant", "content": None, "tool_calls": [call]},
                             "finish_reason": "tool_calls"}], "usage": {"prompt_tokens": 10, "completion_tokens": 5}}
    reply = api.parse(response)
    assert reply == OpenAIApi().parse(response)
    results = [("call_1", "error: no", True)]
    assert api.user(results, "again") == OpenAIApi().user(results, "again")


def test_every_id_an_action_names_is_held_to_a_set_the_observation_shows() -> None:
    roles = {"unlisted_items", "my_listings", "others_listings", "offers_to_me", "my_offers", "listings"}
    for spec in tool_specs():
        for arg in spec["input_schema"]["properties"]:
            if arg.endswith("_id"):
                assert ROLES[(spec["name"], arg)] in roles, (spec["name"], arg)
    assert set(ROLES.values()) <= roles


def test_an_answer_names_only_what_exists_for_the_trader_now() -> None:
    seller, buyer = _people()
    listing = Listing(id="L1", item_id="p1-i1", seller="p1", ask=2400, description="", opened_at=60)
    state = MarketState.replay([ParticipantJoined(at=0, participant=p) for p in (seller, buyer)]
                               + [ItemListed(at=60, listing=listing)])
    # the buyer sees the lamp it wants: it may list its mug, offer on L1 or write there, or pass; no offer is open
    obs = observe(state, "A", "p2", "small", 9 * 3600, 0, [])
    body = ConstrainedApi().request(TierSettings(backend="openai", model="m"), "m", "s",
                                    [{"role": "user", "content": prompts.observation_text(obs)}])
    schema = body["response_format"]["json_schema"]["schema"]
    tools = {v["properties"]["tool"]["const"]: v["properties"]["arguments"]["properties"] for v in schema["oneOf"]}
    assert set(tools) == {"list_item", "make_offer", "send_message", "pass"}
    assert tools["list_item"]["item_id"]["enum"] == ["p2-i1"]
    assert tools["make_offer"]["listing_id"]["enum"] == ["L1"] == tools["send_message"]["listing_id"]["enum"]
    # a repair answers the same observation: the newest one in the conversation holds its ids
    repaired = ConstrainedApi().request(
        TierSettings(backend="openai", model="m"), "m", "s",
        [{"role": "user", "content": prompts.observation_text(obs)}, {"role": "assistant", "content": "?"},
         {"role": "user", "content": prompts.REPAIR_TEXT}])
    assert repaired["response_format"] == body["response_format"]
    # the seller's own listing is its to reprice, delist or write in, never to offer on
    own = referents(json.loads(compact_user_text(prompts.observation_text(
        observe(state, "A", "p1", "small", 9 * 3600, 0, []))).split("<observation>\n", 1)[1].split("\n</obs")[0]))
    assert dict(own)["my_listings"] == ("L1",) and dict(own)["others_listings"] == ()
    grammar = action_grammar(own)
    assert "act-make-offer" not in grammar and '("\\"L1\\"")' in grammar
    llama = pytest.importorskip("llama_cpp.llama_grammar", reason="llama-cpp-python is not installed")
    llama.LlamaGrammar.from_string(grammar, verbose=False)
