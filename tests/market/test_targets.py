"""The targets schema: published standard errors derived from p-values, tolerances with reasons, one rule."""

from __future__ import annotations

from pathlib import Path
from statistics import NormalDist

import pytest
from pydantic import ValidationError

from market.targets import Moment, compare, read_targets, se_from_p

TARGETS = Path(__file__).resolve().parents[2] / "scenarios" / "targets" / "project_deal.yaml"
BASE = {"name": "m", "statistic": "seller_premium_cents", "target": 268, "source": "s", "certainty": "stated exactly"}


def test_se_is_the_estimate_over_the_two_sided_normal_quantile() -> None:
    assert se_from_p(268, 0.030) == pytest.approx(268 / NormalDist().inv_cdf(0.985))
    assert se_from_p(-2.07, 0.001) == pytest.approx(2.07 / 3.2905, rel=1e-4)
    with pytest.raises(ValueError, match="between 0 and 1"):
        se_from_p(1, 1.0)


def test_a_p_value_gives_the_se_and_the_tolerance_when_they_are_absent() -> None:
    m = Moment(**BASE, p_value=0.03)
    assert m.se == pytest.approx(123.497, abs=1e-3) and m.tolerance == m.se == m.scale


def test_an_se_given_with_a_p_value_must_agree_with_it() -> None:
    assert Moment(**BASE, p_value=0.03, se=124).se == 124  # within the rounding of a quoted p-value
    with pytest.raises(ValidationError, match=r"se 200 disagrees with p_value 0\.03"):
        Moment(**BASE, p_value=0.03, se=200)
    with pytest.raises(ValidationError, match=r"p_value .* or a tolerance"):
        Moment(**BASE)
    with pytest.raises(ValidationError, match="estimate of 0"):
        Moment(**{**BASE, "target": 0}, p_value=0.5)


def test_the_shipped_targets_carry_each_published_effect_with_its_p_value_and_each_count_with_a_reason() -> None:
    targets = {m.name: m for m in read_targets(TARGETS).moments}
    for name, estimate, p in (("seller_premium", 268, 0.030), ("buyer_savings", 245, 0.015),
                              ("extra_deals_per_person", 2.07, 0.001)):
        m = targets[name]
        assert (m.target, m.p_value) == (estimate, p) and m.se == pytest.approx(se_from_p(estimate, p))
        assert "coverage" in m.source  # the p-values come from coverage of the write-up
    assert targets["same_item_premium"].target == 364 and "coverage" in targets["same_item_premium"].source
    assert (targets["median_price"].target, targets["items_sold_twice"].target) == (1200, 161)
    for m in targets.values():
        assert m.se is not None or m.tolerance_reason, f"{m.name}: a tolerance without its reason"
    assert not targets["fairness_mean"].fit and targets["fairness_gap"].target == 0


def test_inside_is_the_z_of_the_difference_with_both_standard_errors() -> None:
    m = Moment(**BASE, p_value=0.03)  # SE 123.5 cents
    assert compare(m, 20).inside is False and compare(m, 20).rule == "z = 2.01 (simulated taken as exact)"
    assert compare(m, 20, se_sim=40).inside is True  # 248 / sqrt(123.5^2 + 40^2) = 1.91
    assert compare(m, 20, se_sim=40).rule == "z = 1.91"
    count = Moment(**{**BASE, "statistic": "deals_total", "target": 782}, tolerance=55, tolerance_reason="Poisson")
    assert compare(count, 782 - 55).inside is True and compare(count, 782 - 56).inside is False
