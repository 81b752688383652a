"""Token prices from a data file, and exact cost arithmetic.

Prices are read as decimal dollars per million tokens (fractions of a cent allowed:
0.075 is a real price) and held as integer milli-cents (1e-5 dollar) per million
tokens; milli-cents per million tokens times tokens is a cost in nano-cents (1e-9
cent), an exact integer. Dollars appear only when shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any

import yaml

PRICING_FILE = Path(__file__).with_name("pricing.yaml")
NANOCENTS_PER_DOLLAR = 100 * 1_000_000_000
MAX_PRICE = 10_000  # dollars per million tokens: above it is a typo, not a price


@dataclass(frozen=True)
class Price:
    """Milli-cents (1e-5 dollar) per million tokens, per kind of token (integers, exact)."""

    model: str
    input: int
    output: int
    cache_write: int
    cache_read: int
    min_cache_tokens: int = 1024


@dataclass(frozen=True)
class Usage:
    """Tokens of one call. ``input`` excludes cached tokens (as Anthropic reports it)."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0

    @property
    def total_input(self) -> int:
        """All input tokens: uncached, read from the cache and written to it."""
        return self.input + self.cache_read + self.cache_write

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.input + other.input, self.output + other.output,
                     self.cache_read + other.cache_read, self.cache_write + other.cache_write)

    def as_dict(self) -> dict[str, int]:
        """The tokens by kind: ``input_tokens``, ``output_tokens``, ``cache_read_tokens``, ``cache_write_tokens``."""
        return {"input_tokens": self.input, "output_tokens": self.output,
                "cache_read_tokens": self.cache_read, "cache_write_tokens": self.cache_write}


def _millicents(value: Any, where: str) -> int:
    """Dollars per million tokens (e.g. "0.075") as integer milli-cents per million tokens."""
    text = str(value).strip()
    if isinstance(value, bool) or not text or not all(c in "0123456789." for c in text) or len(text) > 20:
        raise ValueError(f"{where}: a price is dollars per million tokens written with ASCII digits, e.g. "
                         f"'0.075', got {value!r}")
    try:
        dollars_ = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{where}: a price is dollars per million tokens, e.g. '0.075', got {value!r}") from None
    amount = dollars_ * 100_000
    if amount != amount.to_integral_value():
        raise ValueError(f"{where}: a price has at most five decimals of a dollar (a thousandth of a cent), "
                         f"got {value!r}")
    if dollars_ > MAX_PRICE:
        raise ValueError(f"{where}: {value!r} dollars per million tokens is above the bound of {MAX_PRICE:,}")
    return int(amount)


def price_from(model: str, data: dict[str, Any], where: str = "price") -> Price:
    """``model``'s price from ``data`` (``input``, ``output`` required; the cache prices default to ``input``).

    Raises ``ValueError`` naming ``where`` and the field for a missing or unreadable price.
    """
    missing = {"input", "output"} - data.keys()
    if missing:
        raise ValueError(f"{where}: missing {', '.join(sorted(missing))} (dollars per million tokens)")
    return Price(
        model=model,
        input=_millicents(data["input"], f"{where}.input"),
        output=_millicents(data["output"], f"{where}.output"),
        cache_write=_millicents(data.get("cache_write", data["input"]), f"{where}.cache_write"),
        cache_read=_millicents(data.get("cache_read", data["input"]), f"{where}.cache_read"),
        min_cache_tokens=int(data.get("min_cache_tokens", 1024)),
    )


@cache
def table(path: Path = PRICING_FILE) -> tuple[str, dict[str, Price], dict[str, str]]:
    """(date checked, prices by model, aliases) from the pricing file."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    prices = {m: price_from(m, p, f"{path.name}: models.{m}") for m, p in data["models"].items()}
    return str(data["checked"]), prices, dict(data.get("aliases") or {})


def lookup(model: str) -> Price | None:
    """``model``'s price in the pricing file (an alias resolved first), or None for an unknown model."""
    _, prices, aliases = table()
    return prices.get(aliases.get(model, model))


def known_models() -> list[str]:
    """The models the pricing file prices, sorted (aliases not included)."""
    return sorted(table()[1])


def cost_nanocents(usage: Usage, price: Price) -> int:
    """Exact cost of ``usage`` in nano-cents (1e-9 cent); each kind of token priced separately."""
    return (usage.input * price.input + usage.output * price.output
            + usage.cache_read * price.cache_read + usage.cache_write * price.cache_write)


def dollars(nanocents: int) -> float:
    """Nano-cents as dollars, for display only."""
    return nanocents / NANOCENTS_PER_DOLLAR
