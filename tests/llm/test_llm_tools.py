"""Model tools come from the action vocabulary; bad tool calls are named precisely."""

from __future__ import annotations

import pytest

from agents.interview import interview, write_instructions
from agents.llm import prompts
from agents.llm.pricing import Usage, cost_nanocents, dollars, lookup, price_from
from agents.llm.tools import ToolCallError, anthropic_tools, openai_tools, to_action, tool_specs
from market.actions import ACTION_TYPES, MakeOffer, Pass, action_name
from market.domain import Item, Participant, Want
from market.events import Rules


def test_one_tool_per_action_with_the_action_fields() -> None:
    names = [s["name"] for s in tool_specs()]
    assert names == [action_name(t) for t in ACTION_TYPES]
    for spec, action_type in zip(tool_specs(), ACTION_TYPES, strict=True):
        fields = set(action_type.model_fields) - {"type"}
        assert set(spec["input_schema"]["properties"]) == fields
        assert spec["input_schema"]["additionalProperties"] is False
    offer = next(s for s in tool_specs() if s["name"] == "make_offer")["input_schema"]
    assert offer["properties"]["amount"]["type"] == "integer" and offer["required"] == ["listing_id", "amount"]
    assert anthropic_tools()[-1]["cache_control"] == {"type": "ephemeral"}
    assert [t["function"]["name"] for t in openai_tools()] == names


@pytest.mark.parametrize(("name", "arguments", "expected"), [
    ("make_offer", {"listing_id": "L1", "amount": "$12.50"}, 'make_offer.amount: must be a whole number of cents'),
    ("make_offer", {"listing_id": "L1", "amount": 12.5}, "make_offer.amount: must be a whole number of cents"),
    ("make_offer", '{"listing_id": "L1", "amount": 5,}', "make_offer: the arguments are not valid JSON"),
    ("buy_now", {"listing_id": "L1"}, "unknown tool 'buy_now'"),
    ("accept", {"offer_id": "O1", "price": 5}, "accept.price: unknown field"),
    ("make_offer", {"listing_id": "L1"}, "make_offer.amount: Field required"),
    ("make_offer", ["L1", 5], "make_offer: the arguments must be a JSON object"),
])
def test_bad_tool_calls_name_the_field(name: str, arguments: object, expected: str) -> None:
    with pytest.raises(ToolCallError, match=expected.replace("$", r"\$").replace("(", r"\(")):
        to_action(name, arguments)


def test_good_tool_calls_become_actions() -> None:
    assert to_action("make_offer", '{"listing_id": "L1", "amount": 1250}') == MakeOffer(listing_id="L1", amount=1250)
    assert to_action("pass", {}) == Pass()


def _person() -> Participant:
    lamp = Item(id="p1-i1", kind="lamp", title="Desk lamp", category="home", value=2000)
    return Participant(id="p1", name="Ada Fox", budget=10_000, items=(lamp,), reserves={"p1-i1": 1200},
                       wants=(Want(kind="mug", title="Mug", max_price=900),), style="terse", quirks=("uses emoji",))


def test_interview_states_the_limits_and_is_written_to_the_run(tmp_path) -> None:
    person = _person()
    result = interview(person)
    assert "$12.00" in dict(result.transcript)["What is the least you would accept for each of them?"]
    assert "Mug (at most $9.00)" in result.instructions and "$100.00" in result.instructions
    assert interview(person) == result  # the simulated principal always answers the same
    path = write_instructions(tmp_path, person)
    assert path == tmp_path / "instructions" / "p1.md" and result.instructions in path.read_text()
    system = prompts.system_text(person, result.instructions, Rules())
    assert prompts.parse_principal(system)["reserves"] == {"p1-i1": 1200}


def test_costs_are_exact_and_priced_per_kind_of_token() -> None:
    opus, haiku = lookup("claude-opus-4-5"), lookup("claude-haiku-4-5")
    assert (opus.input, opus.output, opus.cache_read, opus.cache_write) == (500_000, 2_500_000, 50_000, 625_000)
    assert (haiku.input, haiku.output, haiku.cache_read, haiku.cache_write) == (100_000, 500_000, 10_000, 125_000)
    usage = Usage(input=1_000_000, output=1_000_000, cache_read=1_000_000, cache_write=1_000_000)
    assert dollars(cost_nanocents(usage, opus)) == 5 + 25 + 0.5 + 6.25
    assert lookup("claude-opus-4-5-20251101") == opus and lookup("gpt-unknown") is None


def test_prices_may_be_fractions_of_a_cent_and_are_bounded() -> None:
    cheap = price_from("flash", {"input": "0.075", "output": 0.3})
    assert (cheap.input, cheap.output, cheap.cache_read) == (7_500, 30_000, 7_500)
    assert cost_nanocents(Usage(input=1_000_000), cheap) == 7_500_000_000  # 7.5 cents, exactly
    assert cost_nanocents(Usage(input=1), cheap) == 7_500  # 7.5e-6 cents, exactly
    for bad, reason in (("0.0000001", "at most five decimals"), ("-1", "ASCII digits"), ("\u0661", "ASCII digits"),
                        ("20000", "above the bound"), ("1e3", "ASCII digits")):
        with pytest.raises(ValueError, match=reason):
            price_from("x", {"input": bad, "output": "1"})
