from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from market.money import Money, MoneyError, format_money, parse_money


@pytest.mark.parametrize(
    ("value", "cents"),
    [("$12.50", 1250), ("12.5", 1250), (1250, 1250), ("$0.05", 5), ("1,200", 120_000), (Decimal("3.1"), 310),
     ("  $7 ", 700), (0, 0)],
)
def test_parses_dollars_and_cents(value: object, cents: int) -> None:
    assert parse_money(value) == cents


@pytest.mark.parametrize(
    ("value", "message"),
    [(-1, "negative"), ("-$3", "negative"), ("nan", "cannot read"), (float("nan"), "float"),
     (12.5, "float"), ("1.234", "two decimals"), ("abc", "cannot read"), ("", "cannot read"),
     (Decimal("NaN"), "finite"), (Decimal("-1"), "negative"), (True, "amount"), (None, "cents or a dollar")],
)
def test_rejects_bad_amounts_with_a_reason(value: object, message: str) -> None:
    with pytest.raises(MoneyError, match=message):
        parse_money(value)


@given(st.integers(min_value=0, max_value=10**12))
def test_format_and_parse_round_trip(cents: int) -> None:
    assert parse_money(format_money(cents)) == cents


def test_money_field_in_a_model_is_an_int_of_cents() -> None:
    class Price(BaseModel):
        amount: Money

    assert Price(amount="$1.99").amount == 199
    assert Price(amount="$1.99").model_dump() == {"amount": 199}
    with pytest.raises(ValidationError, match="two decimals"):
        Price(amount="1.999")
    assert format_money(-5) == "-$0.05"
