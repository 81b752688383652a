"""Study power: the varied field, one test per run as the report's, power with its interval."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from analysis.power import app, parse_vary
from market.factors import FactorError, apply, write_resolved
from market.scenario import load_scenario
from tests.conftest import SCENARIOS


def test_vary_names_a_field_and_its_values() -> None:
    assert parse_vary("participants=20,40,69") == ("participants.generate.count", [20, 40, 69])
    assert parse_vary("markets[*].tiers.small.share=0.2,0.8") == ("markets[*].tiers.small.share", [0.2, 0.8])
    assert parse_vary("participants.budget=$50,$100")[1] == ["$50", "$100"]
    with pytest.raises(FactorError, match="expected NAME=V1,V2"):
        parse_vary("participants")


@pytest.mark.slow
def test_power_per_design_point(tmp_path: Path) -> None:
    scenario, catalog = load_scenario(SCENARIOS / "deal.yaml")
    small = write_resolved(apply(scenario, catalog, {"days": 1}, "test"), SCENARIOS / "catalog.csv", tmp_path / "s")
    result = CliRunner().invoke(app, [str(small), "--vary", "participants=8,12", "--replications", "2",
                                      "--out", str(tmp_path / "power")])
    assert result.exit_code == 0, result.output
    table = pl.read_parquet(tmp_path / "power" / "power.parquet")
    assert table.height == 2 * 3
    assert table["participants.generate.count"].unique().sort().to_list() == [8, 12]
    for row in table.iter_rows(named=True):
        assert row["runs"] == 2 and 0 <= row["detected"] <= row["tested"] <= 2
        if row["tested"]:
            assert row["power"] == row["detected"] / row["tested"]
            assert row["low"] <= row["power"] <= row["high"]
    page = (tmp_path / "power" / "power.html").read_text()
    assert "participants (people per market)" in page and "power (share of runs with p" in page
    bad = CliRunner().invoke(app, [str(small), "--vary", "participants=8", "--alpha", "2"])
    assert bad.exit_code == 2 and "--alpha must be between 0 and 1" in bad.output
