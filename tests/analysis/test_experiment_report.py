"""The cross-cell report: per-run effects, per-cell estimates with t intervals, one self-contained page."""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from scipy import stats as sps
from typer.testing import CliRunner

from analysis.experiment_report import unit_of
from studies.experiment import app as experiment_app
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
    # each tier in the words of every report and the terminal (running/provenance.describe_tier)
    assert 'frontier: offline rule-based profile "frontier"; small: offline rule-based profile "small"' in \
        html.unescape(page)
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
    assert unit_of("markets[B,C].tiers.small", [0.2]) == "share of participants, 0-1"


CONTROLS = f"""scenario: {SCENARIOS / "smoke.yaml"}
replications: 1
set:
  markets:
    - {{name: A, tiers: {{frontier: 1.0}}}}
    - {{name: B, tiers: {{frontier: 0.5, small: 0.5}}}}
factors:
  FACTOR: [0.25, 0.75]
"""


def run_cli(tmp_path: Path, factor: str, name: str) -> tuple[int, str, Path]:
    study = tmp_path / f"{name}.yaml"
    study.write_text(CONTROLS.replace("FACTOR", factor), encoding="utf-8")
    result = CliRunner().invoke(experiment_app, [str(study), "--out", str(tmp_path / name)])
    return result.exit_code, result.output, tmp_path / name


@pytest.mark.slow
def test_an_experiment_says_when_a_factor_changes_the_tiers_a_market_holds(tmp_path: Path) -> None:
    # named markets: the control A stays all-frontier, nothing to say
    code, output, folder = run_cli(tmp_path, "markets[B].tiers.small.share", "named")
    assert code == 0, output
    assert "changes tiers" not in output
    assert "Changes tiers" not in (folder / "report.html").read_text(encoding="utf-8")
    record = json.loads((folder / "experiment.json").read_text())
    assert [c["tier_changes"] for c in record["cells"]] == [[], []]
    assert [[m["tiers"] for m in yaml.safe_load((folder / c["scenario"]).read_text())["markets"]]
            for c in record["cells"]] == [[{"frontier": 1.0}, {"frontier": 0.75, "small": 0.25}],
                                          [{"frontier": 1.0}, {"frontier": 0.25, "small": 0.75}]]
    # every market: A gains the small tier in both cells, said per cell in the terminal and the report
    code, output, folder = run_cli(tmp_path, "markets[*].tiers.small.share", "star")
    assert code == 0, output
    change = "A: frontier only -> frontier + small (gains small)"
    assert "changes tiers: 2 of 2 cell(s) change which tiers a market holds" in output
    assert f"c01 markets[*].tiers.small.share=0.25: {change}" in output
    assert f"c02 markets[*].tiers.small.share=0.75: {change}" in output
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert "Changes tiers: 2 of 2 cell(s) change which tiers a market holds" in page
    assert html.escape(f"c01 (markets[*].tiers.small.share=0.25): {change}.") in page
    # an unknown market: exit 2 naming the factor and the markets there are, nothing run
    code, output, folder = run_cli(tmp_path, "markets[B,Z].tiers.small.share", "bad")
    assert code == 2
    assert "markets[B,Z].tiers.small.share: no market named Z in markets (the markets are A, B)" in \
        " ".join(output.split())  # the error is wrapped at the runner's 80 columns
    assert not folder.exists()
