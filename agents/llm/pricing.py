"""Token prices from a data file, and exact cost arithmetic.

Prices are read as decimal dollars per million tokens and held as integer
cents per million tokens; cents per million tokens times tokens is a cost in
micro-cents (1e-6 cent), an exact integer. Dollars appear only when shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import yaml

PRICING_FILE = Path(__file__).with_name("pricing.yaml")
MICROCENTS_PER_DOLLAR = 100 * 1_000_000


@dataclass(frozen=True)
class Price:
    """Cents per million tokens, per kind of token (integers, exact)."""

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
        return self.input + self.cache_read + self.cache_write

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.input + other.input, self.output + other.output,
                     self.cache_read + other.cache_read, self.cache_write + other.cache_write)

    def as_dict(self) -> dict[str, int]:
        return {"input_tokens": self.input, "output_tokens": self.output,
                "cache_read_tokens": self.cache_read, "cache_write_tokens": self.cache_write}


def _cents(value: Any, where: str) -> int:
    amount = Decimal(str(value)) * 100
    if amount != amount.to_integral_value() or amount < 0:
        raise ValueError(f"{where}: a price must be dollars with at most two decimals, got {value!r}")
    return int(amount)


def price_from(model: str, data: dict[str, Any], where: str = "price") -> Price:
    missing = {"input", "output"} - data.keys()
    if missing:
        raise ValueError(f"{where}: missing {', '.join(sorted(missing))} (dollars per million tokens)")
    return Price(
        model=model,
        input=_cents(data["input"], f"{where}.input"),
        output=_cents(data["output"], f"{where}.output"),
        cache_write=_cents(data.get("cache_write", data["input"]), f"{where}.cache_write"),
        cache_read=_cents(data.get("cache_read", data["input"]), f"{where}.cache_read"),
        min_cache_tokens=int(data.get("min_cache_tokens", 1024)),
    )


@cache
def table(path: Path = PRICING_FILE) -> tuple[str, dict[str, Price], dict[str, str]]:
    """(date checked, prices by model, aliases) from the pricing file."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    prices = {m: price_from(m, p, f"{path.name}: models.{m}") for m, p in data["models"].items()}
    return str(data["checked"]), prices, dict(data.get("aliases") or {})


def lookup(model: str) -> Price | None:
    _, prices, aliases = table()
    return prices.get(aliases.get(model, model))


def known_models() -> list[str]:
    return sorted(table()[1])


def cost_microcents(usage: Usage, price: Price) -> int:
    """Exact cost of ``usage`` in micro-cents (1e-6 cent); each kind of token priced separately."""
    return (usage.input * price.input + usage.output * price.output
            + usage.cache_read * price.cache_read + usage.cache_write * price.cache_write)


def dollars(microcents: int) -> float:
    """Micro-cents as dollars, for display only."""
    return microcents / MICROCENTS_PER_DOLLAR
