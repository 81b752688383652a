"""Typed refusals: any Python value handed to the action parser is a validation error naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from agents.llm.tools import ToolCallError, to_action, tool_names
from market.actions import ACTION_TYPES, action_name, parse_action


class Opaque:
    """A Python object with no JSON spelling."""


def _cycle() -> list[Any]:
    loop: list[Any] = []
    loop.append(loop)
    return loop


LEAVES = (
    st.none() | st.booleans() | st.integers() | st.integers(min_value=10**18, max_value=10**40)
    | st.floats() | st.text(max_size=30) | st.binary(max_size=30) | st.builds(bytearray, st.binary(max_size=8))
    | st.builds(Opaque) | st.builds(object) | st.complex_numbers() | st.just(Ellipsis) | st.builds(_cycle)
    | st.frozensets(st.integers(), max_size=3) | st.sets(st.text(max_size=3), max_size=3)
    | st.from_type(type).filter(lambda t: t is not bool)
)
VALUES = st.recursive(
    LEAVES,
    lambda children: (st.lists(children, max_size=4) | st.tuples(children, children)
                      | st.dictionaries(st.text(max_size=8) | st.integers() | st.binary(max_size=4), children,
                                        max_size=4)),
    max_leaves=12,
)

# a valid call per tool, so that one field at a time can be given an arbitrary value
GOOD: dict[str, dict[str, Any]] = {
    "list_item": {"item_id": "i1", "ask": 1250, "description": "a lamp"},
    "delist": {"listing_id": "L1"},
    "reprice": {"listing_id": "L1", "ask": 1000},
    "make_offer": {"listing_id": "L1", "amount": 900, "message": "hi"},
    "counter": {"offer_id": "O1", "amount": 950, "message": "meet me"},
    "accept": {"offer_id": "O1", "message": "deal"},
    "reject": {"offer_id": "O1", "message": "no"},
    "withdraw": {"offer_id": "O1"},
    "send_message": {"listing_id": "L1", "text": "hello", "to": "p2"},
    "pass": {},
}
FIELDS = [(name, field) for name, good in GOOD.items() for field in good]


def test_every_tool_has_a_good_call() -> None:
    assert set(GOOD) == set(tool_names())
    for name, good in GOOD.items():
        assert action_name(type(to_action(name, good))) == name
        assert set(good) == {f for f in next(t for t in ACTION_TYPES if action_name(t) == name).model_fields} - {
            "type"}


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(sorted(GOOD)), arguments=VALUES.filter(lambda v: not isinstance(v, str)))
def test_any_arguments_are_an_action_or_a_tool_call_error(name: str, arguments: Any) -> None:
    try:
        action = to_action(name, arguments)
    except ToolCallError as exc:
        assert str(exc).startswith(f"{name}"), exc
    else:
        assert isinstance(action, BaseModel)


@pytest.mark.parametrize(("name", "field"), FIELDS)
@settings(max_examples=60, deadline=None)
@given(value=VALUES)
def test_any_value_in_a_field_is_refused_naming_that_field(name: str, field: str, value: Any) -> None:
    try:
        action = to_action(name, {**GOOD[name], field: value})
    except ToolCallError as exc:
        assert f"{name}.{field}:" in str(exc), exc
    else:  # a value pydantic accepts for the field (lax mode: bytes for a text, None for `to`)
        assert action_name(type(action)) == name


@settings(max_examples=300, deadline=None)
@given(data=VALUES)
def test_parse_action_takes_any_value(data: Any) -> None:
    """The market's own parser (used by Slack commands and approvals) never raises anything but ValidationError."""
    try:
        action = parse_action(data)
    except ValidationError as exc:
        assert exc.errors()
    else:
        assert isinstance(action, ACTION_TYPES)


@pytest.mark.parametrize(("name", "field"), FIELDS)
@settings(max_examples=40, deadline=None)
@given(value=VALUES)
def test_parse_action_names_the_field(name: str, field: str, value: Any) -> None:
    try:
        parse_action({**GOOD[name], "type": name, field: value})
    except ValidationError as exc:
        assert any(err["loc"][:2] == (name, field) for err in exc.errors()), exc.errors()


@pytest.mark.parametrize("value", [b"1250", bytearray(b"12"), {1250}, Opaque(), _cycle(), 12.5 + 0j, None])
def test_wrong_python_types_for_an_amount(value: Any) -> None:
    with pytest.raises(ToolCallError, match=r"^make_offer\.amount: must be a whole number of cents"):
        to_action("make_offer", {"listing_id": "L1", "amount": value})
