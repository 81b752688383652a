"""The exact best allocation under budgets, and realised gains never above it."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from analysis import load_run
from analysis.efficiency import best_allocation, efficiency, surplus


def _items(rows: list[tuple[str, str, str, int]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=["item_id", "owner", "kind", "reserve"], orient="row")


def _wants(rows: list[tuple[str, str, int]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=["participant_id", "kind", "max_price"], orient="row")


def test_picks_the_best_buyer_for_each_item() -> None:
    items = _items([("i1", "s", "lamp", 1000), ("i2", "s", "lamp", 2500)])
    wants = _wants([("a", "lamp", 3000), ("b", "lamp", 2000), ("c", "lamp", 900)])
    best = best_allocation(items, wants, {"s": 0, "a": 10_000, "b": 10_000, "c": 10_000})
    # a takes i2 (500) and b takes i1 (1000) = 1500, or a takes i1 (2000) alone = 2000: best is 2000
    assert (best.gains, best.trades) == (2000, 1)


def test_budgets_bind_unless_sales_pay_for_it() -> None:
    items = _items([("i1", "s", "lamp", 1500), ("i2", "a", "chair", 400)])
    wants = _wants([("a", "lamp", 3000), ("s", "chair", 900)])
    # a has 1000 cents: the lamp (reserve 1500) is affordable only if a sells the chair for at least 500
    assert best_allocation(items, wants, {"s": 10_000, "a": 1000}).gains == 1500 + 500
    # with 500 a would need the chair to fetch 1000, above what s would pay: only the chair trades
    assert best_allocation(items, wants, {"s": 10_000, "a": 500}).gains == 500
    # and if s has no money either, s can only pay for the chair out of the lamp's price: nothing trades
    assert best_allocation(items, wants, {"s": 0, "a": 500}).gains == 0


def test_realised_gains_never_exceed_the_optimum(pairs_run: Path) -> None:
    data = load_run(pairs_run)
    eff = efficiency(data)
    assert eff.height == 3 and (eff["solver"] == "optimal").all()
    assert (eff["realised_cents"] <= eff["optimal_cents"]).all()
    assert ((eff["efficiency"] > 0) & (eff["efficiency"] <= 1)).all()
    per_person = surplus(data)
    realised = per_person.group_by("market").agg(pl.col("surplus").sum()).sort("market")
    assert realised["surplus"].to_list() == eff.sort("market")["realised_cents"].to_list()
