"""Calibration: the targets file, parameters, moments of a run, a small resumable deterministic study."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from agents.offline import CAPABILITIES, PROFILES
from market.scenario import FreeParameters, ScenarioError, load_scenario
from running import runner
from running.runfolder import RunFolder
from studies.calibrate import Parameter, ablation_plan, calibrate, prepare, read_targets, run_moments, settings
from studies.factors import FactorError, apply, write_resolved
from tests.conftest import ROOT, SCENARIOS

TARGETS = ROOT / "scenarios" / "targets" / "project_deal.yaml"


def mini(tmp_path: Path) -> Path:
    """deal.yaml made small: 16 people, one day, the same four markets."""
    scenario, catalog = load_scenario(SCENARIOS / "deal.yaml")
    small = apply(scenario, catalog, {"days": 1, "participants.generate.count": 16}, "test")
    small = small.model_copy(update={"calibration": FreeParameters()})  # parameters come from each test
    return write_resolved(small, SCENARIOS / "catalog.csv", tmp_path / "mini")


def test_the_published_targets_read_with_sources() -> None:
    targets = read_targets(TARGETS)
    by_name = {m.name: m for m in targets.moments}
    assert by_name["deals_run_a"].target == 186 and by_name["deals_all_runs"].target == 782
    assert by_name["buyer_savings"].target == 245 and by_name["extra_deals_per_person"].target == 2.07
    assert not by_name["fairness_mean"].fit and all(m.source for m in targets.moments)


@pytest.mark.parametrize(("body", "message"), [
    ("  - {name: f, statistic: fairness_mean, target: 4, tolerance: 1, source: s, certainty: qualitative}\n",
     "t.yaml: moments.0: Value error, f: cannot be fitted"),
    ("  - {name: d, statistic: deals, target: 4, tolerance: 1, source: s, certainty: qualitative}\n",
     "d: deals is counted in one market; name it"),
    ("  - {name: d, statistic: deals, market: A, target: 4, tolerance: 0, source: s, certainty: qualitative}\n",
     "t.yaml: moments[0].tolerance: Input should be greater than 0"),
    ("  - {name: d, statistic: dels, market: A, target: 4, tolerance: 1, source: s, certainty: qualitative}\n",
     "t.yaml: moments[0].statistic: Input should be"),
    ("  - {name: d, statistic: deals, market: A, target: .inf, tolerance: 1, source: s, certainty: qualitative}\n",
     "t.yaml: moments[0].target: Input should be a finite number"),
    ("  - {name: d, statistic: deals, market: A, target: 4, tolerance: 1, source: s, certainty: qualitative, "
     "note: " + "n" * 10_001 + "}\n", "t.yaml: moments[0].note: String should have at most 10000 characters"),
])
def test_targets_errors_name_file_and_field(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("name: t\nsource: here\nmoments:\n" + body, encoding="utf-8")
    with pytest.raises(ScenarioError) as caught:
        read_targets(path)
    assert message.replace("moments.0: Value error, ", "moments[0]: ") in str(caught.value)


def test_parameters_are_paths_with_bounds(tmp_path: Path) -> None:
    assert Parameter.parse("tiers.small.options.attention=1:6") == Parameter("tiers.small.options.attention", 1, 6,
                                                                             True)
    assert Parameter.parse("tiers.frontier.options.concession=0.2:0.7").integer is False
    for bad in ("days", "days=3", "days=3:1", "days=a:b", "days=1:inf", "days=nan:2"):
        with pytest.raises(FactorError):
            Parameter.parse(bad)
    with pytest.raises(FactorError, match="name the parameters to fit"):
        prepare(mini(tmp_path), TARGETS, [], 1, 2, 1)
    with pytest.raises(ValueError, match=r"--seed must be 0 to 2\*\*32 - 1 .* got -3"):
        prepare(mini(tmp_path), TARGETS, [], 1, 2, -3)
    with pytest.raises(ValueError, match="--seeds must be 1 to 1000 and --holdout 2 to 1000"):
        prepare(mini(tmp_path), TARGETS, [], 1, 5_000, 1)
    with pytest.raises(ScenarioError, match=r"--param \(low bounds\).*tiers.small.bogus: unknown key"):
        prepare(mini(tmp_path), TARGETS, ["tiers.small.bogus=1:2"], 1, 2, 1)


def test_moments_of_a_run_match_the_analysis(tmp_path: Path) -> None:
    from analysis.load import load_run
    from analysis.stats import person_pairs, same_item_pairs

    # two days: on the first, the calibrated week's 16 people sell no item in both tiers (no pairs to compare)
    prepared = runner.plan(mini(tmp_path), days=2)
    result = runner.start(prepared, RunFolder.create(tmp_path, "run"), after_run=False)
    moments = run_moments(result.folder.path, read_targets(TARGETS).moments)
    summary = result.summary.as_json()
    assert moments["deals_run_a"] == summary["markets"][0]["deals"]
    assert moments["deals_all_runs"] == sum(m["deals"] for m in summary["markets"])
    data = load_run(result.folder.path)
    pair = ("frontier", "small")
    assert same_item_pairs(data, "seller", pair).height > 0 and same_item_pairs(data, "buyer", pair).height > 0
    assert moments["seller_premium"] == pytest.approx(same_item_pairs(data, "seller", pair)["diff"].mean())
    assert moments["buyer_savings"] == pytest.approx(-same_item_pairs(data, "buyer", pair)["diff"].mean())
    assert moments["extra_deals_per_person"] == pytest.approx(person_pairs(data, pair)["diff"].mean())
    assert "fairness_mean" not in moments


@pytest.mark.slow
def test_a_small_study_is_resumable_and_deterministic(tmp_path: Path) -> None:
    scenario = mini(tmp_path)
    params = ["tiers.small.options.attention=1:6", "tiers.frontier.options.concession=0.2:0.7"]
    cal = prepare(scenario, TARGETS, params, 1, 2, 5)
    first = calibrate(cal, 2, tmp_path / "a", ablation=False)
    assert first["trials"] == 2 and first["fit_seeds"] == [5]
    assert not set(first["holdout_seeds"]) & set(first["fit_seeds"])
    resumed = calibrate(cal, 3, tmp_path / "a", ablation=False)  # continues: one more trial, the first two kept
    assert resumed["trials"] == 3
    assert sorted(p.name for p in (tmp_path / "a" / "trials").iterdir()) == ["t0000", "t0001", "t0002"]
    again = calibrate(cal, 3, tmp_path / "b", ablation=False)
    assert again["best"] == resumed["best"]
    fitted, _ = load_scenario(tmp_path / "a" / "calibrated.yaml")
    best = resumed["best"]["params"]
    assert fitted.tiers["small"].options["attention"] == best["tiers.small.options.attention"]
    text = (tmp_path / "a" / "calibrated.yaml").read_text()
    assert text.splitlines()[1].startswith("# This file is written by the calibration; do not edit it by hand.")
    assert "# against project_deal.yaml (project_deal): 3 trials x 1 seeds" in text
    record = json.loads((tmp_path / "a" / "calibration.json").read_text())
    assert {r["moment"] for r in record["fit"]} >= {"deals_run_a", "fairness_mean"}
    assert "ablation" not in record  # asked for without one
    assert not (tmp_path / "a" / "report.html").exists()  # the engine writes no HTML; the command's page:
    from analysis.calibration_report import write_page

    page = write_page(tmp_path / "a").read_text(encoding="utf-8")
    assert len(page) > 1_000_000 and "plotly.js v" in page  # plotly.js inlined
    assert "deals_run_a" in page and ("✓" in page or "✗" in page) and "No ablation in this study" in page


def test_parameters_declared_in_the_scenario_and_replaced_on_the_command(tmp_path: Path) -> None:
    path = mini(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["calibration"] = {"parameters": {"tiers.small.options.attention": [1, 4],
                                          "tiers.small.options.concession": [0.2, 0.8]}}
    path.write_text(yaml.safe_dump(data))
    cal = prepare(path, TARGETS, ["tiers.small.options.attention=2:6"], 1, 2, 1)
    assert {p.path: (p.low, p.high, p.integer) for p in cal.parameters} == {
        "tiers.small.options.attention": (2, 6, True), "tiers.small.options.concession": (0.2, 0.8, False)}
    data["calibration"] = {"parameters": {"tiers.small.options.concession": [0.8, 0.2]}}
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ScenarioError, match=r"calibration.*low must be below high"):
        prepare(path, TARGETS, [], 1, 2, 1)


def test_every_capability_of_the_shipped_weeks_profiles_is_fitted_or_fixed_with_a_reason() -> None:
    cal = prepare(SCENARIOS / "deal.yaml", TARGETS, [], 8, 20, 1)
    scenario, _ = load_scenario(SCENARIOS / "deal.yaml")
    rows = settings(scenario, [p.path for p in cal.parameters], cal.fixed)
    assert {(r["profile"], r["setting"]) for r in rows} == {
        (p, s) for p in ("deal_frontier", "deal_small") for s in CAPABILITIES}
    assert [r for r in rows if r["status"] == "undeclared"] == []
    assert all(why.strip() for why in cal.fixed.values())
    # a setting fitted on the command line is no longer listed as fixed
    again = prepare(SCENARIOS / "deal.yaml", TARGETS, ["profiles.deal_small.max_rounds=1:4"], 8, 20, 1)
    assert "profiles.deal_small.max_rounds" not in again.fixed
    assert cal.fixed["profiles.deal_small.max_rounds"]


def test_a_setting_is_either_fitted_or_fixed(tmp_path: Path) -> None:
    path = mini(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["calibration"] = {"parameters": {"profiles.deal_small.concession": [0.2, 0.8]},
                           "fixed": {"profiles.deal_small.concession": "held"}}
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ScenarioError, match=r"fixed\.profiles\.deal_small\.concession: also under parameters"):
        prepare(path, TARGETS, [], 1, 2, 1)
    data["calibration"] = {"parameters": {"profiles.deal_small.concession": [0.2, 0.8]},
                           "fixed": {"profiles.deal_small.counters": ""}}
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ScenarioError, match=r"calibration\.fixed"):
        prepare(path, TARGETS, [], 1, 2, 1)


@pytest.mark.slow
def test_the_ablation_sets_each_capability_of_the_small_tier_to_the_frontiers(tmp_path: Path) -> None:
    # the small week's two profiles differ in three capabilities: the ablation has those rows and "all"
    path = mini(tmp_path)
    data = yaml.safe_load(path.read_text())
    frontier = data["profiles"]["deal_frontier"]
    data["profiles"]["deal_small"] = {**frontier, "base": "small", "value_noise": 0.25, "counters": False,
                                      "attention": 2}
    path.write_text(yaml.safe_dump(data))
    cal = prepare(path, TARGETS, ["participants.generate.wants_per_person.max=3:5"], 2, 2, 3)
    changes, why = ablation_plan(cal, {"participants.generate.wants_per_person.max": 4})
    assert why == "" and [c["name"] for c in changes] == ["value_noise", "counters", "attention", "all"]
    assert changes[1]["set"] == {"profiles.deal_small.counters": PROFILES["frontier"].counters}
    record = calibrate(cal, 2, tmp_path / "s")
    assert record["trials"] == 2 and record["seeds_per_trial"] == 2
    ablation = record["ablation"]
    assert [r["name"] for r in ablation["rows"]] == ["value_noise", "counters", "attention", "all"]
    gaps = {"seller_premium", "buyer_savings", "extra_deals_per_person"}
    assert set(ablation["baseline"]) == gaps and all(set(r["gaps"]) == gaps for r in ablation["rows"])
    assert sorted(p.name for p in (tmp_path / "s" / "ablation").iterdir()) == sorted(
        ["value_noise", "counters", "attention", "all"])
    for row in record["fit"]:  # inside or not by the targets' rule, with the published interval
        assert row["why_not_simulated"] or row["inside"] in (True, False, None)
        assert row["published_low"] < row["target"] < row["published_high"]
    from analysis.calibration_report import write_page

    page = write_page(tmp_path / "s").read_text(encoding="utf-8")
    assert "What drives each tier gap (ablation)" in page and "counters: whether it counters" in page
    assert "the calibrated week" in page
