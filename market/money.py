"""Money in integer cents: parsing, validation and formatting.

No float ever holds a price. Integers are cents; strings and Decimals are
dollars ("$12.50", "12.5"). Floats are refused because they cannot say
whether they meant dollars or cents, nor hold cents exactly.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

_DOLLARS = re.compile(r"^\$?\s*([+-]?)(\d{1,3}(?:,\d{3})+|\d*)(?:\.(\d*))?$")


class MoneyError(ValueError):
    """A value that cannot be read as an amount of money."""


def parse_money(value: Any) -> int:
    """Return ``value`` as integer cents.

    ``1250`` -> 1250 (already cents); ``"$12.50"``, ``"12.5"``, ``"1,200"``
    and ``Decimal("12.5")`` are dollars. Negative amounts, NaN, infinities,
    more than two decimals and floats are refused with a clear message.
    """
    if isinstance(value, bool):
        raise MoneyError(f"money must be an amount, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise MoneyError(f"money cannot be negative, got {value} cents")
        return value
    if isinstance(value, float):
        raise MoneyError(
            f"money must be integer cents or a dollar string like '$12.50', got the float {value!r}"
        )
    if isinstance(value, Decimal):
        return _dollars_to_cents(value, str(value))
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("-") and _DOLLARS.match(text[1:].strip()):
            raise MoneyError(f"money cannot be negative, got {value!r}")
        match = _DOLLARS.match(text)
        if not match or not (match.group(2) or match.group(3)):
            raise MoneyError(f"cannot read {value!r} as money; write it like '$12.50'")
        sign, whole, frac = match.groups()
        if sign == "-":
            raise MoneyError(f"money cannot be negative, got {value!r}")
        if frac is not None and len(frac) > 2:
            raise MoneyError(f"money has at most two decimals (cents), got {value!r}")
        return int(whole.replace(",", "") or "0") * 100 + int((frac or "").ljust(2, "0"))
    raise MoneyError(f"money must be cents or a dollar string, got {type(value).__name__}")


def _dollars_to_cents(amount: Decimal, shown: str) -> int:
    try:
        if not amount.is_finite():
            raise MoneyError(f"money must be a finite amount, got {shown!r}")
        if amount < 0:
            raise MoneyError(f"money cannot be negative, got {shown!r}")
        cents = amount * 100
        if cents != cents.to_integral_value():
            raise MoneyError(f"money has at most two decimals (cents), got {shown!r}")
        return int(cents)
    except InvalidOperation as exc:  # pragma: no cover - defensive
        raise MoneyError(f"cannot read {shown!r} as money") from exc


def format_money(cents: int) -> str:
    """Format cents as dollars: 1250 -> '$12.50', -5 -> '-$0.05'."""
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    return f"{sign}${whole:,}.{frac:02d}"


def dollars(cents: int) -> float:
    """Cents as a float of dollars, for display and plotting only."""
    return cents / 100


Money = Annotated[int, BeforeValidator(parse_money), PlainSerializer(int, return_type=int)]
"""A pydantic field type: integer cents, read from cents or dollar strings."""

__all__ = ["Money", "MoneyError", "dollars", "format_money", "parse_money"]
