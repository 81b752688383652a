"""The cross-cell report: per-run effects, per-cell estimates with t intervals, one self-contained page."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats as sps

from analysis.experiment_report import unit_of
from studies.experiment import load, run
from tests.conftest import SCENARIOS

STUDY = f"""scenario: {SCENARIOS / "smoke.yaml"}
replications: 3
set:
  participants.generate.count: 12
  markets:
    - {{name: A, tiers: {{frontier: 0.5, small: 0.5}}}}
    - {{name: B, tiers: {{frontier: 0.5, small: 0.5}}}}
factors:
  markets[*].tiers.small.share: [0.25, 0.75]
"""


@pytest.mark.slow
def test_experiment_writes_estimates_per_cell_and_a_report(tmp_path: Path) -> None:
    (tmp_path / "study.yaml").write_text(STUDY, encoding="utf-8")
    record = run(load(tmp_path / "study.yaml"), out=tmp_path / "exp", workers=2)  # the after_experiment plugin
    assert record["complete"]
    effects = pl.read_parquet(tmp_path / "exp" / "effects.parquet")
    cells = pl.read_parquet(tmp_path / "exp" / "cells.parquet")
    assert effects.height == 2 * 3 * 3  # cells x replications x effects (one pair of tiers)
    assert set(effects["seed"].to_list()) == {r["seed"] for r in record["runs"]}
    assert cells.height == 2 * 3
    for row in cells.iter_rows(named=True):
        values = effects.filter((pl.col("cell") == row["cell"]) & (pl.col("effect") == row["effect"]))["value"]
        values = values.drop_nulls().to_numpy()
        assert row["replications"] == values.size
        if values.size >= 2:
            half = sps.t.ppf(0.975, values.size - 1) * values.std(ddof=1) / np.sqrt(values.size)
            assert row["estimate"] == pytest.approx(values.mean())
            assert (row["low"], row["high"]) == pytest.approx((values.mean() - half, values.mean() + half))
    assert cells.filter(pl.col("effect") == "seller_premium")["name"][0] == \
        "seller premium: same item sold by frontier vs small"
    page = (tmp_path / "exp" / "report.html").read_text(encoding="utf-8")
    assert "frontier: offline profile frontier; small: offline profile small" in page
    assert "modelling assumptions of those profiles, not measurements of any model" in page
    assert f"base {record['base_seed']}" in page
    assert page.count("<script src=") == 0 and page.count("plotly.js v") == 1  # inlined once, no network
    for title in ("estimate (dollars)", "estimate (deals per person)",
                  "markets[*].tiers.small.share (share of participants, 0-1)"):
        assert json.dumps(title)[1:-1] in page


def test_factor_axes_have_units() -> None:
    assert unit_of("markets[*].tiers.small.share", [0.2]) == "share of participants, 0-1"
    assert unit_of("markets[1].tiers.small", [0.2]) == "share of participants, 0-1"
    assert unit_of("participants.budget", ["$50", "$100"]) == "dollars"
    assert unit_of("participants.generate.budget", [5000]) == "cents"
    assert unit_of("days", [1, 2]) == "days"
    assert unit_of("rules.offer_ttl", [3600]) == "seconds"
