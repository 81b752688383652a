"""Reports that say what produced them: provenance first, explicit comparisons, honest wording and figures."""

from __future__ import annotations

import html
import math
import re
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from analysis import load_run, stats
from analysis.report import Comparison, _regression_sentence, analyse, app, build_figures, render, summary_text
from market.events import RejectionCode
from market.scenario import ScenarioError, load_scenario, validate_scenario
from running.provenance import closing_lines, comparisons, parse_compare, provenance_lines, run_lines
from tests.analysis.conftest import SCENARIOS


def test_provenance_states_backends_seeds_people_budgets_days_and_the_assumption() -> None:
    scenario, _ = load_scenario(SCENARIOS / "deal.yaml")
    lines = provenance_lines(scenario, seeds=[5, 6, 7])
    first = lines[0]
    assert "69 participants" in first and "$100.00 each" in first and "5 simulated day(s)" in first
    assert "seeds 5-7 (3 runs)" in first and "A, D: all frontier" in first
    assert 'frontier = offline rule-based profile "deal_frontier" (declared in the scenario: "frontier"' in lines[1]
    assert "modelling assumptions of those profiles" in lines[2] and "not measurements of any model" in lines[2]
    assert lines[3] == "Compared: frontier minus small (as the scenario's `compare:` names them)."


def test_a_model_tier_beside_an_offline_one_is_told_apart() -> None:
    scenario, _ = load_scenario(SCENARIOS / "deal.yaml")
    tiers = {**scenario.tiers, "frontier": scenario.tiers["frontier"].model_copy(
        update={"backend": "anthropic", "model": "claude-opus-4-5"})}
    lines = provenance_lines(scenario.model_copy(update={"tiers": tiers}), compare=["small", "frontier"])
    assert "frontier = anthropic model claude-opus-4-5" in lines[1]
    assert lines[2].startswith("small ran on offline rule-based profiles: its differences from other tiers")
    assert "small minus frontier (as --compare names them)" in lines[3]


def test_comparisons_are_named_never_the_first_two_listed() -> None:
    assert comparisons(["a", "b", "c"]) == [("a", "b"), ("a", "c"), ("b", "c")]
    assert comparisons(["x", "y", "z"], ["z", "x"]) == [("z", "x")]
    assert parse_compare("frontier:small") == ["frontier", "small"]
    with pytest.raises(ValueError, match="--compare"):
        parse_compare("frontier")
    with pytest.raises(ValueError, match=r"got 'xxxx.*\.\.\. \(3,002 characters\)$"):
        parse_compare("x" * 3_000)
    data = {"name": "s", "participants": {"generate": {"count": 4}}, "tiers": {"a": {}, "b": {}},
            "markets": [{"name": "A", "tiers": {"a": 0.5, "b": 0.5}}]}
    with pytest.raises(ScenarioError, match=r"compare: tier 'c' is not defined"):
        validate_scenario({**data, "compare": ["a", "c"]}, "s.yaml")
    with pytest.raises(ScenarioError, match="compare: name two or more different tiers"):
        validate_scenario({**data, "compare": ["a"]}, "s.yaml")


def test_the_direction_follows_compare(pairs_run: Path) -> None:
    data = load_run(pairs_run)
    forward, backward = analyse(data), analyse(data, compare=["small", "frontier"])
    assert forward.contrast == ("frontier", "small") and backward.contrast == ("small", "frontier")
    assert backward.headline[0].value == pytest.approx(-forward.headline[0].value)
    assert "sold by small vs frontier" in backward.headline[0].name
    assert any(line.startswith("small minus frontier:") for line in summary_text(backward))


def test_three_tiers_give_every_pair(pairs_run: Path) -> None:
    data = load_run(pairs_run)
    # a third tier: half of market C's small agents become "medium"
    people = data.participants.with_columns(
        tier=pl.when((pl.col("market") == "C") & (pl.col("tier") == "small")
                     & (pl.col("participant_id").str.slice(-1).cast(pl.Int64) % 2 == 0))
        .then(pl.lit("medium")).otherwise(pl.col("tier")))
    tier_of = people.select("market", "participant_id", "tier")
    deals = data.deals.drop("seller_tier", "buyer_tier").join(
        tier_of.rename({"participant_id": "seller", "tier": "seller_tier"}), on=["market", "seller"]).join(
        tier_of.rename({"participant_id": "buyer", "tier": "buyer_tier"}), on=["market", "buyer"])
    three = replace(data, participants=people, deals=deals, tiers=["frontier", "small", "medium"],
                    scenario={**data.scenario, "compare": []})
    a = analyse(three)
    assert [(c.top, c.base) for c in a.comparisons] == [("frontier", "small"), ("frontier", "medium"),
                                                       ("small", "medium")]
    assert sum(line.count(" minus ") for line in summary_text(a) if ": did the" in line) == 3


def test_p_at_its_floor_and_regressions_that_disagree() -> None:
    floor = 1 / (stats.PERMUTATIONS + 1)
    assert stats.format_p(floor, floor) == f"p < 1/{stats.PERMUTATIONS:,}"
    assert stats.format_p(0.0004) == "p < 0.001" and stats.format_p(0.031) == "p = 0.031"
    paired = stats.Estimate("seller premium: x (cents)", 276.0, 210.0, 347.0, floor, 40, "paired", floor)
    saving = stats.Estimate("buyer savings: x (cents)", 131.0, 59.0, 210.0, 0.001, 40, "paired", floor)
    extra = stats.Estimate("extra deals", 0.5, -0.1, 1.1, 0.2, 40, "paired", floor)
    far = stats.Estimate("price: seller", 467.0, 356.0, 577.0, 0.001, 90, "OLS")
    near = stats.Estimate("price: buyer", -150.0, -220.0, -80.0, 0.001, 90, "OLS")
    c = Comparison("frontier", "small", headline=[paired, saving, extra], regression=[far, near])
    sentence = _regression_sentence(c)
    assert sentence is not None
    assert "agrees with the paired buyer estimate but not with the seller one" in sentence
    assert not stats.agrees(paired, far) and stats.agrees(paired, replace(far, low=300.0))
    c.regression = [replace(far, value=-467.0, low=-577.0, high=-356.0), replace(near, value=150.0, low=80.0,
                                                                                  high=220.0)]
    assert "does not agree with the paired estimates" in (_regression_sentence(c) or "")


def test_the_report_opens_with_what_produced_it(pairs_run: Path) -> None:
    a = analyse(load_run(pairs_run))
    text = render(a)
    head = html.unescape(text[:text.index("<h2>Summary")])
    for needed in ("What produced these numbers", 'offline rule-based profile "small"', "seed 11",
                   "12 participants", "$100.00 each", "1 simulated day(s)", "not measurements of any model",
                   "Compared: frontier minus small"):
        assert needed in head, needed
    # fairness is not simulated: the report says so, and shows no rating gap, table or figure
    assert not any(line.startswith("Did anyone notice?") for line in summary_text(a))
    assert "Fairness is not simulated" in html.unescape(text) and "fairness ratings against surplus" not in text
    assert a.noticed[1].name.startswith("fairness rating (none: not simulated)")
    assert a.noticed[1].method == "no ratings: fairness is not simulated"
    # per-tier refusals and failed turns are counted
    assert int(a.conduct["refused_actions"].sum()) == a.data.rejections.height
    mandate = [c.value for c in RejectionCode if c.mandate]
    assert int(a.conduct["refused_by_mandate"].sum()) == a.data.rejections["code"].is_in(mandate).sum()
    assert "unspecified" not in " ".join(a.conduct["refused_by_code"])  # a fresh ledger: every refusal has a code
    assert "Refused actions and failed turns per tier" in text


def test_figures_label_every_axis_and_draw_no_box_for_one_market(pairs_run: Path) -> None:
    a = analyse(load_run(pairs_run))
    for fig in build_figures(a):
        layout = fig.layout.to_plotly_json()
        axes = [k for k in layout if re.fullmatch(r"[xy]axis\d*", k)]
        for axis in axes:
            if layout[axis].get("matches") and layout[axis].get("showticklabels") is False:
                continue  # the upper panel of shared x axes: its ticks are the lower panel's
            title = ((layout[axis].get("title") or {}).get("text") or "").strip()
            assert title, f"{layout['title']['text']}: {axis} has no title"
        if "efficiency" in layout["title"]["text"]:
            assert not [t for t in fig.data if t.type == "box"]  # one run: one point per market


def test_the_terminal_gets_provenance_and_the_headline(pairs_run: Path, smoke_run: Path) -> None:
    assert run_lines(smoke_run)[0].startswith("Scenario smoke:")
    lines = closing_lines(pairs_run)
    assert lines[0] == f"report: {pairs_run / 'report.html'}"
    assert lines[1].startswith("headline: seller premium: same item sold by frontier vs small: $")
    assert "95% CI" in lines[1]
    assert any("deals (95% CI" in line for line in lines)
    single = closing_lines(smoke_run)  # one mixed market: nothing paired
    assert single[1].startswith("headline: no tier effect could be estimated")


def test_cli_compare(pairs_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    result = CliRunner().invoke(app, [str(pairs_run), "--out", str(out), "--compare", "small:frontier"])
    assert result.exit_code == 0, result.output
    assert "small minus frontier (as --compare names them)" in out.read_text()
    bad = CliRunner().invoke(app, [str(pairs_run), "--out", str(out), "--compare", "small"])
    assert bad.exit_code == 2 and "--compare" in bad.output
    assert not math.isnan(analyse(load_run(pairs_run)).headline[0].value)
