"""Study power: the varied design, each week tested as the report tests it, power with its interval."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from html import unescape
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from analysis.load import load_run
from analysis.pages import render
from analysis.report import analyse
from market.scenario import load_scenario
from studies.factors import FactorError, apply
from studies.power import EFFECTS, app, figure, mixed_markets, parse_effects, parse_vary, power_table, write_page
from tests.analysis.conftest import ROOT, SCENARIOS, pairs_scenario


def test_vary_names_a_design_and_its_values() -> None:
    people = parse_vary("participants=20,40,69")
    assert (people.name, people.path, people.values) == ("participants", "participants.generate.count", [20, 40, 69])
    assert parse_vary("days=1,3,5").path == "days"
    markets = parse_vary("mixed_markets=1,2,4")
    assert (markets.path, markets.values) == ("markets", [1, 2, 4])
    assert "mixed markets" in markets.axis and "participants" in people.axis
    share = parse_vary("markets[*].tiers.small.share=0.2,0.8")
    assert (share.path, share.values) == ("markets[*].tiers.small.share", [0.2, 0.8])
    assert parse_vary("participants.budget=$50,$100").values == ["$50", "$100"]
    with pytest.raises(FactorError, match="expected NAME=V1,V2"):
        parse_vary("participants")
    with pytest.raises(FactorError, match="whole numbers of at least 1"):
        parse_vary("mixed_markets=0,2")
    with pytest.raises(FactorError, match="given twice"):
        parse_vary("days=1,1")
    with pytest.raises(FactorError, match=r"--vary participants: a number of 5,000 characters"):
        parse_vary("participants=20," + "9" * 5_000)


def test_effects_are_named_repeatable_and_checked() -> None:
    assert parse_effects(None) == list(EFFECTS) == parse_effects(["all"])
    assert parse_effects(["extra_deals", "seller_premium"]) == ["seller_premium", "extra_deals"]
    assert parse_effects(["buyer_savings,extra_deals"]) == ["buyer_savings", "extra_deals"]
    with pytest.raises(ValueError, match="seller_premium, buyer_savings, extra_deals"):
        parse_effects(["premium"])


def test_mixed_markets_keep_the_single_tier_markets_and_the_published_two() -> None:
    scenario, catalog = load_scenario(SCENARIOS / "deal.yaml")
    names = [[m["name"] for m in mixed_markets(scenario, n)] for n in (1, 2, 4)]
    assert names == [["A", "B", "D"], ["A", "B", "C", "D"], ["A", "B", "C", "E", "F", "D"]]
    assert mixed_markets(scenario, 2) == [m.model_dump(mode="json", exclude_defaults=True) for m in scenario.markets]
    assert mixed_markets(scenario, 4)[4] == {"name": "F", "tiers": {"frontier": 0.5, "small": 0.5}}
    only_frontier = apply(scenario, catalog, {"markets": [{"name": "A", "tiers": {"frontier": 1.0}}]}, "test")
    assert mixed_markets(only_frontier, 1) == [{"name": "A", "tiers": {"frontier": 1.0}},
                                               {"name": "B", "tiers": {"frontier": 0.5, "small": 0.5}}]
    with pytest.raises(FactorError, match="a scenario holds at most 100 markets, got 100000"):
        mixed_markets(scenario, 100_000)


def test_power_is_the_share_of_weeks_detected_with_its_exact_interval() -> None:
    """A hand-made set of weeks: the shares and Clopper-Pearson bounds worked out by hand."""
    weeks = pl.DataFrame({
        "days": [1, 1, 1, 3, 3, 5, 5],
        "effect": ["extra_deals"] * 7,
        "name": ["extra deals"] * 7,
        "estimate": [0.5, 0.1, 0.4, float("nan"), 0.9, float("nan"), float("nan")],
        "p_value": [0.01, 0.2, 0.05, None, 0.001, None, None],
        "units": [5, 5, 5, 0, 7, 0, 0],
    })
    table = power_table(weeks, "days", 0.05)
    one, three, five = table.iter_rows(named=True)
    # 1 day: p = 0.01 detected, 0.2 not, 0.05 not (p < alpha is strict): 1 of 3
    assert (one["weeks"], one["tested"], one["detected"], one["power"]) == (3, 3, 1, pytest.approx(1 / 3))
    # Clopper-Pearson for 1 of 3: the upper bound solves (1 - p)^3 + 3p(1 - p)^2 = 0.025, the lower 1 - (1 - p)^3
    assert 1 - (1 - one["low"]) ** 3 == pytest.approx(0.025)
    assert (1 - one["high"]) ** 3 + 3 * one["high"] * (1 - one["high"]) ** 2 == pytest.approx(0.025)
    assert one["mean_estimate"] == pytest.approx(1.0 / 3) and one["status"] == "tested"
    # 3 days: a week without units detected nothing; the other did: 1 of 2, bounds 1 - sqrt(0.975) and sqrt(0.975)
    assert (three["weeks"], three["tested"], three["detected"], three["power"]) == (2, 1, 1, 0.5)
    assert (three["low"], three["high"]) == (pytest.approx(1 - 0.975 ** 0.5), pytest.approx(0.975 ** 0.5))
    assert three["mean_estimate"] == pytest.approx(0.9)
    # 5 days: no week had a unit to test: no power, not power 0
    assert (five["power"], five["low"], five["status"], five["tested"]) == (None, None, "no units", 0)


@pytest.mark.slow
def test_power_of_mixed_markets_tests_each_week_as_the_report_does(tmp_path: Path) -> None:
    scenario = pairs_scenario(tmp_path / "s")
    folder = tmp_path / "power"
    result = CliRunner().invoke(app, [str(scenario), "--vary", "mixed_markets=1,2", "-n", "2", "--effect",
                                      "seller_premium", "--effect", "extra_deals", "--out", str(folder), "-q"])
    assert result.exit_code == 0, result.output
    weeks = pl.read_parquet(folder / "power_runs.parquet")
    table = pl.read_parquet(folder / "power.parquet")
    assert table.select("mixed_markets", "effect").rows() == [
        (1, "seller_premium"), (1, "extra_deals"), (2, "seller_premium"), (2, "extra_deals")]
    # one mixed market: nobody is in both tiers, so extra deals per person has no units in any week
    lone = table.filter((pl.col("mixed_markets") == 1) & (pl.col("effect") == "extra_deals")).row(0, named=True)
    assert (lone["status"], lone["power"], lone["tested"]) == ("no units", None, 0)
    assert "no units" in result.output
    # each week's p-values are the ones its report prints (two mixed markets pooled per person)
    for run_dir in weeks["run_dir"].unique(maintain_order=True):
        report = {e.name: e.p_value for e in analyse(load_run(folder / run_dir)).headline}
        for row in weeks.filter(pl.col("run_dir") == run_dir).iter_rows(named=True):
            assert row["p_value"] == report[row["name"]]
        markets = {m for m in load_run(folder / run_dir).participants["market"].unique()}
        assert markets == ({"A", "B"} if "/c01/" in f"/{run_dir}" else {"A", "B", "C"})
    # the table's numbers are the shares of those weeks
    for row in table.iter_rows(named=True):
        part = weeks.filter((pl.col("mixed_markets") == row["mixed_markets"]) & (pl.col("effect") == row["effect"]))
        detected = sum(1 for p in part["p_value"] if p is not None and p < 0.05)
        assert (row["weeks"], row["detected"]) == (2, detected)
        if row["status"] == "tested":
            assert row["power"] == detected / 2 and row["low"] <= row["power"] <= row["high"]
    page = (folder / "power.html").read_text()
    assert "mixed markets (half-and-half tier markets per week)" in page and "alpha 5%" in page
    assert "power (% of weeks with p" in page and "no units" in page  # named under its tick, not drawn as 0
    assert [trace["x"] for trace in plotly_data(page)] == [[1, 2], [1, 2]]  # on the design points
    assert not list(folder.glob("cells/*/*/report.html"))  # no report per week


def test_bad_input_is_named_before_anything_runs(tmp_path: Path) -> None:
    scenario = pairs_scenario(tmp_path / "s")
    out = tmp_path / "power"
    for args, message in ((["--vary", "days=1", "--effect", "premium"], "the effects are seller_premium"),
                          (["--vary", "days=1", "--alpha", "2"], "--alpha must be between 0 and 1"),
                          (["--vary", "mixed_markets=0"], "whole numbers of at least 1"),
                          (["--vary", "nosuchfield=1"], "nosuchfield")):
        result = CliRunner().invoke(app, [str(scenario), *args, "--out", str(out)])
        assert result.exit_code == 2 and message in result.output, (args, result.output)
        assert not out.exists()


def test_market_power_launches_it_without_importing_the_analysis() -> None:
    env = {**os.environ, "COLUMNS": "200"}
    code = "import sys, market.power; print(sorted(m for m in sys.modules if m.split('.')[0] == 'analysis'))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert loaded.stdout.strip() == "[]", loaded.stderr
    shown = subprocess.run([sys.executable, "-m", "market.power", "-h"], capture_output=True, text=True, cwd=ROOT,
                           timeout=120, env=env)
    assert shown.returncode == 0, shown.stderr
    assert "Usage: python -m market.power" in shown.stdout and "--effect" in shown.stdout


def plotly_figure(html: str) -> tuple[list[dict], dict]:
    """The traces and layout of the page's first plotly figure, as the page hands them to Plotly.newPlot."""
    start = re.search(r'Plotly\.newPlot\(\s*"[^"]+",\s*', html)
    assert start, "no plotly figure on the page"
    decoder = json.JSONDecoder()
    data, end = decoder.raw_decode(html, start.end())
    layout, _ = decoder.raw_decode(html, re.compile(r"\s*,\s*").match(html, end).end())
    return data, layout


def plotly_data(html: str) -> list[dict]:
    """The traces of the page's first plotly figure."""
    return plotly_figure(html)[0]


def test_the_power_page_has_the_report_look_units_and_points_on_the_design_values(tmp_path: Path) -> None:
    weeks = pl.DataFrame({
        "participants": [20, 20, 69, 69, 140, 140] * 2,
        "effect": ["seller_premium"] * 6 + ["extra_deals"] * 6,
        "name": ["seller premium"] * 6 + ["extra deals"] * 6,
        "estimate": [150.0, 90.0, 210.0, 180.0, 260.0, 240.0, 0.2, 0.1, 0.5, 0.6, float("nan"), float("nan")],
        "p_value": [0.2, 0.04, 0.01, 0.03, 0.001, 0.002, 0.5, 0.3, 0.04, 0.2, None, None],
        "units": [10, 10, 30, 30, 60, 60, 8, 8, 20, 20, 0, 0],
    })
    vary = parse_vary("participants=20,69,140")
    table = power_table(weeks, "participants", 0.05)
    target = tmp_path / "power.html"
    write_page(target, figure(table, vary, 0.05), Path("deal.yaml"), ["seller_premium", "extra_deals"], table, vary)
    html = target.read_text(encoding="utf-8")
    style = re.search(r"<style>.*?</style>", render("base.html", title="t"), re.S)
    assert style and style.group(0) in html  # the run report's stylesheet
    traces, layout = plotly_figure(html)
    assert [(t["name"], t["x"]) for t in traces] == [("seller premium", [20, 69, 140]),
                                                     ("extra deals per person", [20, 69, 140])]
    assert all("offsetgroup" not in t for t in traces) and "scattermode" not in layout  # not shifted sideways
    assert layout["yaxis"]["tickformat"] == ".0%"
    text = unescape(re.sub(r"<[^>]+>", " ", re.sub(r"<script.*?</script>", "", html, flags=re.S)))
    assert not re.search(r"\b(True|False|None|NaN|nan)\b", text)
    for shown in ("50%", "100%", "1 of 2 weeks", "+$1.20", "+$2.50", "+0.15 deals per person", "no units",
                  "p < 5%"):
        assert shown in text, shown


def test_power_at_the_published_effects_is_the_normal_power_of_their_published_se(tmp_path: Path) -> None:
    from scipy import stats as sps

    from market.targets import read_targets
    from studies.power import PUBLISHED_PEOPLE, normal_power, people_needed, published_power

    targets = read_targets(SCENARIOS / "targets" / "project_deal.yaml")
    table = published_power(targets, list(EFFECTS), [PUBLISHED_PEOPLE, 4 * PUBLISHED_PEOPLE], 0.05)
    at = {(r["effect"], r["participants"]): r for r in table.iter_rows(named=True)}
    premium = at[("seller_premium", 69)]
    z = 268 / premium["se"]  # the z the published p = 0.030 implies
    assert z == pytest.approx(sps.norm.ppf(1 - 0.03 / 2))
    assert premium["power"] == pytest.approx(sps.norm.cdf(z - 1.959964) + sps.norm.cdf(-z - 1.959964))
    assert at[("seller_premium", 276)]["se"] == pytest.approx(premium["se"] / 2)  # four times the people
    # at the published estimate, the power is a function of its p alone: 0.5 at p = alpha
    assert normal_power(1.959964, 1.0, 0.05) == pytest.approx(0.5, abs=1e-4)
    assert [round(at[(e, 69)]["power"], 2) for e in EFFECTS] == [0.58, 0.68, 0.91]
    # a replication for 80% power: 69 * ((1.96 + 0.84) / z)^2 people, rounded up
    assert premium["people_for_80"] == people_needed(268, premium["se"], 69, 0.05, 0.8) == 116
    assert normal_power(268, premium["se"] * (69 / 116) ** 0.5, 0.05) >= 0.8
    assert normal_power(268, premium["se"] * (69 / 115) ** 0.5, 0.05) < 0.8

    out = CliRunner().invoke(app, [str(SCENARIOS / "deal.yaml"), "--effects", "published",
                                   "--vary", "participants=69,140", "--out", str(tmp_path / "p")])
    assert out.exit_code == 0, out.output
    assert "power at the published effects (project_deal)" in out.output and "+$2.68 (p = 0.03)" in out.output
    assert pl.read_parquet(tmp_path / "p" / "power_published.parquet").height == 6
    assert not list((tmp_path / "p").glob("*/ledger.sqlite"))  # nothing was run
    bad = CliRunner().invoke(app, [str(SCENARIOS / "deal.yaml"), "--effects", "published", "--vary", "days=1,2"])
    assert bad.exit_code == 2 and "only participants" in bad.output
    assert CliRunner().invoke(app, [str(SCENARIOS / "deal.yaml"), "--effects", "twin"]).exit_code == 2  # no --vary
