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


def known_effects(seed: int) -> tuple[list[dict[str, object]], dict[tuple[str, str], str]]:
    """120 items sold in three markets each: seller frontier +300 cents, buyer frontier -200, noise 50."""
    rng = np.random.default_rng(seed)
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
    return rows, people


def test_fixed_effects_recovers_known_tier_effects() -> None:
    seller, buyer = stats.fixed_effects(synthetic(*known_effects(7)))
    assert abs(seller.value - 300) < 30 and abs(buyer.value + 200) < 30
    assert seller.p_value < 1e-6


def test_the_fixed_effects_interval_covers_the_true_effect_about_95_percent_of_the_time() -> None:
    covered = 0
    for seed in range(100):
        rows, _ = known_effects(seed)
        seller, buyer = stats.fixed_effects_of(pl.DataFrame(rows), ("frontier", "small"))
        covered += (seller.low < 300 < seller.high) + (buyer.low < -200 < buyer.high)
    assert 0.9 <= covered / 200 <= 0.99  # 95% nominal; 200 intervals give about +-3 points of Monte Carlo spread


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


TODAY = Path(__file__).parent / "data" / "stats_today.json"


@pytest.mark.parametrize("run", ["deal", "pairs"])
def test_the_library_statistics_agree_with_the_hand_written_figures_they_replace(run: str) -> None:
    """scipy's bootstrap and permutation test and statsmodels' regression, on the inputs of a deal.yaml week and a
    three-market test week, against the figures the hand-written code gave on the same inputs (recorded before
    the change). The percentile bootstrap draws the same resamples from the same seed, so its interval is equal;
    the permutation p-value is a Monte Carlo estimate from other flips (or exact for n <= 13), so it agrees
    within Monte Carlo error; the regression's coefficients are equal and its standard errors smaller by exactly
    sqrt((n-2) / (n-2-G)): the item effects, nested in the item clusters, no longer count in the correction."""
    import json

    recorded = json.loads(TODAY.read_text(encoding="utf-8"))[run]
    today = recorded["today"]
    diffs = [recorded["seller_diffs"], [-d for d in recorded["buyer_diffs"]], recorded["person_diffs"]]
    for old, values in zip(today[:3], diffs, strict=True):
        new = stats.paired_estimate(old["name"], np.array(values), seed=0)
        assert new.n == old["n"] and new.value == pytest.approx(old["value"])
        assert (new.low, new.high) == pytest.approx((old["low"], old["high"]))
        if 2 ** new.n <= stats.PERMUTATIONS:
            assert new.p_floor is None  # exact: every sign pattern
        monte_carlo = 4 * np.sqrt(old["p_value"] * (1 - old["p_value"]) / stats.PERMUTATIONS) + 2 / stats.PERMUTATIONS
        assert new.p_value == pytest.approx(old["p_value"], abs=max(monte_carlo, 0.03 if new.p_floor is None else 0))
    deals = pl.DataFrame(recorded["deals"])
    fitted = stats.fixed_effects_of(deals, tuple(recorded["pair"]))
    units = deals.select(pl.concat_str("run", "item_id")).to_series()
    repeat = units.value_counts().filter(pl.col("count") > 1)
    n, clusters = int(repeat["count"].sum()), repeat.height
    for old, new in zip(today[3:], fitted, strict=True):
        assert new.value == pytest.approx(old["value"]) and new.n == old["n"] == n
        old_half, new_half = (old["high"] - old["low"]) / 2, (new.high - new.low) / 2
        assert old_half / new_half == pytest.approx(np.sqrt((n - 2) / (n - 2 - clusters)), rel=1e-9)
        assert (new.p_value is not None and old["p_value"] is not None
                and (new.p_value < 0.05) == (old["p_value"] < 0.05))
