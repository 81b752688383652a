from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from market.money import MAX_CENTS, MAX_MONEY_TEXT, Money, MoneyError, format_money, parse_money


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


@given(st.integers(min_value=0, max_value=MAX_CENTS))
def test_format_and_parse_round_trip(cents: int) -> None:
    assert parse_money(format_money(cents)) == cents


@given(st.integers(min_value=MAX_CENTS + 1, max_value=10**30))
def test_amounts_above_the_bound_are_refused_in_every_form(cents: int) -> None:
    for value in (cents, format_money(cents), Decimal(cents) / 100):
        with pytest.raises(MoneyError, match=r"at most \$1,000,000.00|cannot read a"):
            parse_money(value)


def test_the_bound_itself_is_accepted() -> None:
    assert MAX_CENTS == 100_000_000
    assert parse_money("$1,000,000.00") == parse_money(MAX_CENTS) == parse_money(Decimal("1000000")) == MAX_CENTS
    with pytest.raises(MoneyError, match=r"at most \$1,000,000.00 \(100,000,000 cents\), got '\$1,000,000.01'"):
        parse_money("$1,000,000.01")


# digits int() and the regex module's \d accept, which are not ASCII 0-9
_FOREIGN_DIGITS = st.sampled_from("\u0660\u0661\u0669\u06f5\u0966\uff10\uff11\uff19\u09e7\u0e51\U0001d7d9")


@given(st.text(alphabet=st.sampled_from("0123456789"), max_size=4), _FOREIGN_DIGITS,
       st.text(alphabet=st.sampled_from("0123456789"), max_size=4), st.sampled_from(["", "$", "$ "]))
def test_digits_other_than_ascii_are_refused(before: str, digit: str, after: str, prefix: str) -> None:
    text = f"{prefix}{before}{digit}{after}"
    assert int(before + digit + after) >= 0  # Python itself would read it
    with pytest.raises(MoneyError, match="digits 0-9 only"):
        parse_money(text)


@pytest.mark.parametrize("length", [MAX_MONEY_TEXT + 1, 4_300, 4_301, 100_000])
def test_overlong_texts_are_refused_before_parsing(length: int) -> None:
    with pytest.raises(MoneyError, match=f"{length:,}-character"):
        parse_money("9" * length)


def test_huge_integers_are_refused_without_writing_them_out() -> None:
    for value in (10**19, 10**4_300, 10**5_000):
        with pytest.raises(MoneyError, match="at most") as info:
            parse_money(value)
        assert len(str(info.value)) < 200
    with pytest.raises(MoneyError, match="negative") as info:
        parse_money(-(10**5_000))
    assert len(str(info.value)) < 200
    for huge in (Decimal("1e999999999"), Decimal("9" * 5_000)):
        with pytest.raises(MoneyError, match="at most"):
            parse_money(huge)
    with pytest.raises(MoneyError, match="two decimals"):
        parse_money(Decimal("1e-999999999"))


@given(st.text(max_size=60))
def test_any_text_is_cents_within_the_bound_or_a_money_error(text: str) -> None:
    try:
        cents = parse_money(text)
    except MoneyError:
        return
    assert 0 <= cents <= MAX_CENTS
    assert all(ch.isascii() for ch in text if ch.isdigit())


def test_money_field_in_a_model_is_an_int_of_cents() -> None:
    class Price(BaseModel):
        amount: Money

    assert Price(amount="$1.99").amount == 199
    assert Price(amount="$1.99").model_dump() == {"amount": 199}
    with pytest.raises(ValidationError, match="two decimals"):
        Price(amount="1.999")
    assert format_money(-5) == "-$0.05"
    with pytest.raises(ValidationError, match="at most"):
        Price(amount=MAX_CENTS + 1)
    with pytest.raises(ValidationError, match="at most"):
        Price.model_validate_json('{"amount": 10000000000000000000}')
    assert Price.model_json_schema()["properties"]["amount"] == {
        "maximum": MAX_CENTS, "minimum": 0, "title": "Amount", "type": "integer",
    }
