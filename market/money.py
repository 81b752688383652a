"""Money in integer cents: parsing, validation and formatting.

No float ever holds a price. Integers are cents; strings and Decimals are
dollars ("$12.50", "12.5"). Floats are refused because they cannot say
whether they meant dollars or cents, nor hold cents exactly. Every amount is
bounded: at most ``MAX_CENTS`` ($1,000,000), written with ASCII digits only.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any

import msgspec
from pydantic import BeforeValidator, Field, PlainSerializer

MAX_CENTS = 100_000_000
"""The largest amount anywhere in the market: $1,000,000.00, in cents."""

MAX_MONEY_TEXT = 32
"""The longest dollar string read (``"$1,000,000.00"`` is 13 characters); longer ones are refused unread."""

# ASCII digits only: ``\d`` and ``int()`` also accept Arabic-Indic, fullwidth and other digits
_DOLLARS = re.compile(r"^\$?[ \t]*([+-]?)([0-9]{1,3}(?:,[0-9]{3})+|[0-9]*)(?:\.([0-9]*))?$")


class MoneyError(ValueError):
    """A value that cannot be read as an amount of money."""


def parse_money(value: Any) -> int:
    """Return ``value`` as integer cents.

    ``1250`` -> 1250 (already cents); ``"$12.50"``, ``"12.5"``, ``"1,200"``
    and ``Decimal("12.5")`` are dollars. Negative amounts, amounts above
    ``MAX_CENTS``, NaN, infinities, more than two decimals, digits other than
    ASCII 0-9, overlong strings and floats are refused with a clear message.
    """
    if type(value) is int and 0 <= value <= MAX_CENTS:  # the common case: cents already in range
        return value
    if isinstance(value, bool):
        raise MoneyError(f"money must be an amount, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise MoneyError(f"money cannot be negative, got {_cents_shown(value)}")
        if value > MAX_CENTS:
            raise MoneyError(_too_much(_cents_shown(value)))
        return value
    if isinstance(value, float):
        raise MoneyError(
            f"money must be integer cents or a dollar string like '$12.50', got the float {value!r}"
        )
    if isinstance(value, Decimal):
        return _dollars_to_cents(value, str(value)[:40])
    if isinstance(value, str):
        if len(value) > MAX_MONEY_TEXT:
            raise MoneyError(
                f"cannot read a {len(value):,}-character text as money; amounts are at most "
                f"{format_money(MAX_CENTS)}, written like '$12.50'"
            )
        text = value.strip()
        if any(ch.isdigit() and not ch.isascii() for ch in text):
            raise MoneyError(f"money is written with the digits 0-9 only, got {value!r}")
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
        cents = int(whole.replace(",", "") or "0") * 100 + int((frac or "").ljust(2, "0"))
        return _bounded(cents, repr(value))
    raise MoneyError(f"money must be cents or a dollar string, got {type(value).__name__}")


def _dollars_to_cents(amount: Decimal, shown: str) -> int:
    try:
        if not amount.is_finite():
            raise MoneyError(f"money must be a finite amount, got {shown!r}")
        if amount < 0:
            raise MoneyError(f"money cannot be negative, got {shown!r}")
        if amount > Decimal(MAX_CENTS) / 100:
            raise MoneyError(_too_much(repr(shown)))
        whole_cents = amount.quantize(Decimal("0.01"))
        if whole_cents != amount:
            raise MoneyError(f"money has at most two decimals (cents), got {shown!r}")
        return int(whole_cents * 100)
    except ArithmeticError as exc:  # pragma: no cover - defensive (InvalidOperation, Overflow)
        raise MoneyError(f"cannot read {shown!r} as money") from exc


def _bounded(cents: int, shown: str) -> int:
    if cents > MAX_CENTS:
        raise MoneyError(_too_much(shown))
    return cents


def _too_much(shown: str) -> str:
    return f"money is at most {format_money(MAX_CENTS)} ({MAX_CENTS:,} cents), got {shown}"


def _cents_shown(cents: int) -> str:
    """An amount of cents for a message, without writing out thousands of digits."""
    if abs(cents) < 10**18:
        return f"{cents} cents"
    digits = int(abs(cents).bit_length() * 0.30103) + 1
    return f"an amount of about {digits:,} digits"


def format_money(cents: int) -> str:
    """Format cents as dollars: 1250 -> '$12.50', -5 -> '-$0.05'."""
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    return f"{sign}${whole:,}.{frac:02d}"


def dollars(cents: int) -> float:
    """Cents as a float of dollars, for display and plotting only."""
    return cents / 100


Money = Annotated[
    int, Field(ge=0, le=MAX_CENTS), BeforeValidator(parse_money), PlainSerializer(int, return_type=int),
    msgspec.Meta(ge=0, le=MAX_CENTS),
]
"""A field type: integer cents from 0 to ``MAX_CENTS``. In a pydantic model it is read from cents or
dollar strings (its JSON schema says ``minimum`` and ``maximum``); in a msgspec record (``market.domain``)
it is the same bounds on integer cents. Each library reads only its own part of the annotation."""

__all__ = ["MAX_CENTS", "MAX_MONEY_TEXT", "Money", "MoneyError", "dollars", "format_money", "parse_money"]
