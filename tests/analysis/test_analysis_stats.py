"""Paired differences, bootstrap, permutation test, fixed-effects regression, pooling over runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from analysis import load_run, stats
from tests.analysis.conftest import synthetic


def test_paired_differences_keeps_units_seen_under_both_tiers() -> None:
    df = pl.DataFrame({
        "item": ["a", "a", "a", "b", "c", "c"],
        "tier": ["top", "base", "top", "top", "base", "top"],
        "price": [100, 60, 120, 50, 30, 40],
    })
    out = stats.paired_differences(df, ["item"], "tier", "price", "top", "base")
    assert out["item"].to_list() == ["a", "c"]
    assert out["diff"].to_list() == [50.0, 10.0]  # a: mean(100, 120) - 60


def test_bootstrap_and_permutation() -> None:
    rng = np.random.default_rng(1)
    shifted = rng.normal(5.0, 1.0, 40)
    low, high = stats.bootstrap_ci(shifted, seed=3)
    assert low < shifted.mean() < high
    assert low > 4.0 and high < 6.0
    assert stats.sign_flip_p(shifted) < 0.001
    assert stats.sign_flip_p(rng.normal(0.0, 1.0, 40) * 0 + np.tile([1.0, -1.0], 20)) > 0.5


def test_fixed_effects_recovers_known_tier_effects() -> None:
    rng = np.random.default_rng(7)
    rows, people = [], {}
    for item in range(120):
        base = int(rng.integers(500, 5000))
        for market in ("B", "C", "D"):
            s, b = rng.choice(["frontier", "small"], 2)
            price = base + (300 if s == "frontier" else 0) - (200 if b == "frontier" else 0) + int(rng.normal(0, 50))
            seller, buyer = f"s{item}{market}", f"b{item}{market}"
            people[(market, seller)], people[(market, buyer)] = s, b
            rows.append({"run": "r", "market": market, "item_id": f"i{item}", "price": price,
                         "seller_tier": s, "buyer_tier": b})
    data = synthetic(rows, people)
    seller, buyer = stats.fixed_effects(data)
    assert seller.low < 300 < seller.high and abs(seller.value - 300) < 30
    assert buyer.low < -200 < buyer.high and abs(buyer.value + 200) < 30
    assert seller.p_value < 1e-6


def test_across_runs_uses_a_t_interval_over_replications() -> None:
    per_run = pl.DataFrame({"name": ["x"] * 4, "value": [1.0, 2.0, 3.0, 4.0]})
    (e,) = stats.across_runs(per_run)
    assert e.value == 2.5 and e.n == 4
    assert e.low == pytest.approx(2.5 - 3.182446 * np.std([1, 2, 3, 4], ddof=1) / 2, rel=1e-5)


def test_headline_on_a_real_multi_market_run(pairs_run: Path) -> None:
    data = load_run(pairs_run)
    seller, buyer, deals = stats.headline(data)
    assert buyer.n == stats.same_item_pairs(data, "buyer").height
    pairs = stats.same_item_pairs(data, "seller")
    assert seller.n == pairs.height > 0
    assert seller.value == pytest.approx(pairs["diff"].mean())
    assert seller.low <= seller.value <= seller.high
    assert 0 < seller.p_value <= 1
    assert deals.n == stats.person_pairs(data).height
