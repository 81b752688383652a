"""Every action field is bounded where it enters: amounts, texts and ids, in validation and in the schema."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from market.actions import ACTION_TYPES, MAX_ID, MAX_TEXT, MakeOffer, action_name, parse_action
from market.money import MAX_CENTS, format_money

MONEY_ACTIONS = [("list_item", "ask", {"item_id": "i1"}), ("reprice", "ask", {"listing_id": "L1"}),
                 ("make_offer", "amount", {"listing_id": "L1"}), ("counter", "amount", {"offer_id": "O1"})]


@pytest.mark.parametrize(("kind", "field", "rest"), MONEY_ACTIONS)
@given(cents=st.integers(min_value=0, max_value=MAX_CENTS))
def test_amounts_up_to_the_bound_are_accepted(kind: str, field: str, rest: dict, cents: int) -> None:  # type: ignore[type-arg]
    action = parse_action({"type": kind, field: cents, **rest})
    assert getattr(action, field) == cents
    assert parse_action(json.dumps({"type": kind, field: format_money(cents), **rest})) == action


@pytest.mark.parametrize(("kind", "field", "rest"), MONEY_ACTIONS)
@given(cents=st.integers(min_value=MAX_CENTS + 1, max_value=10**40))
def test_amounts_over_the_bound_are_refused_saying_so(kind: str, field: str, rest: dict, cents: int) -> None:  # type: ignore[type-arg]
    for value in (cents, format_money(cents)):
        with pytest.raises(ValidationError, match=rf"{field}\n.*(at most \$1,000,000.00|cannot read a)"):
            parse_action({"type": kind, field: value, **rest})


def test_the_reported_amounts_are_refused_not_recorded() -> None:
    with pytest.raises(ValidationError, match="at most"):  # an ask of 10^19 cents was accepted
        parse_action({"type": "list_item", "item_id": "i1", "ask": 10**19})
    for digits in (4_300, 4_301, 10_000):  # a 4,300-digit amount wrote an event the ledger could not read
        with pytest.raises(ValidationError):
            parse_action('{"type": "make_offer", "listing_id": "L1", "amount": ' + "9" * digits + "}")
        with pytest.raises(ValidationError, match="at most"):
            parse_action({"type": "make_offer", "listing_id": "L1", "amount": 10**digits})


@given(st.text(alphabet=st.sampled_from("0123456789\u0660\u0665\u06f3\u0967\uff10\uff15"), min_size=1, max_size=6)
       .filter(lambda t: not t.isascii()))
def test_digits_other_than_ascii_are_refused_in_actions(text: str) -> None:
    with pytest.raises(ValidationError, match="digits 0-9 only"):
        parse_action({"type": "make_offer", "listing_id": "L1", "amount": text})


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"type": "make_offer", "listing_id": "L1", "amount": 5, "message": "x" * (MAX_TEXT + 1)}, "message"),
        ({"type": "list_item", "item_id": "i1", "ask": 5, "description": "x" * (MAX_TEXT + 1)}, "description"),
        ({"type": "send_message", "listing_id": "L1", "text": "x" * (MAX_TEXT + 1)}, "text"),
        ({"type": "send_message", "listing_id": "L1", "text": "hi", "to": "p" * (MAX_ID + 1)}, "to"),
        ({"type": "accept", "offer_id": "O" * (MAX_ID + 1)}, "offer_id"),
        ({"type": "delist", "listing_id": "L" * (MAX_ID + 1)}, "listing_id"),
        ({"type": "list_item", "item_id": "i" * (MAX_ID + 1), "ask": 5}, "item_id"),
    ],
)
def test_texts_and_ids_are_bounded(data: dict, field: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValidationError, match=rf"{field}\n\s+String should have at most"):
        parse_action(data)


def test_every_field_of_every_action_says_its_bound_in_the_schema() -> None:
    for action_type in ACTION_TYPES:
        for name, prop in action_type.model_json_schema()["properties"].items():
            options = prop.get("anyOf", [prop])
            for option in options:
                if option.get("type") == "integer":
                    assert option["maximum"] == MAX_CENTS and option["minimum"] == 0, (action_type, name)
                if option.get("type") == "string" and name != "type":
                    assert option["maxLength"] in (MAX_TEXT, MAX_ID), (action_type, name)


def test_the_model_tools_carry_the_maximum() -> None:
    from agents.llm.tools import tool_specs

    offer = next(s for s in tool_specs() if s["name"] == action_name(MakeOffer))
    assert offer["input_schema"]["properties"]["amount"]["maximum"] == MAX_CENTS
    assert offer["input_schema"]["properties"]["listing_id"]["maxLength"] == MAX_ID
