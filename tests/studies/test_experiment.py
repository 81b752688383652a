"""Experiments: the file's schema, factor paths, grid and cells, seeds, running, resuming, batch_run."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from market.ledger import Ledger
from market.scenario import load_scenario
from running import runner
from running.runfolder import RunFolder
from studies.experiment import (
    EXPERIMENT_FILE,
    ExperimentError,
    batch_run,
    derive_seed,
    load,
    plan_runs,
    read_spec,
    run,
)
from studies.factors import FactorError, apply, as_data, parse_assignment, parse_path, set_path, tier_changes
from tests.conftest import ROOT, SCENARIOS, export


def write(tmp_path: Path, text: str, name: str = "study.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


SMOKE = f"scenario: {SCENARIOS / 'smoke.yaml'}\n"


# --- the file ---------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "expected"), [
    ("replicatons: 2\n", "study.yaml: replicatons: unknown key"),
    ("replications: 0\n", "study.yaml: replications: Input should be greater than or equal to 1"),
    ("replications: 2\nfactors: {days: []}\n", "study.yaml: factors.days: List should have at least 1 item"),
    ("replications: 2\nfactors: {'markets[].tiers': [1]}\n", "study.yaml: factors: markets[].tiers: not a field"),
    ("replications: 2\nfactors: {days: [1, 1]}\n", "study.yaml: factors: days: a level is listed twice"),
    ("replications: 2\nfactors: {days: [1, 2]}\ncells: [{days: 3}]\n",
     "study.yaml: cells[0]: days: 3 is not one of the factor's levels"),
    ("replications: 2\nfactors: {days: [" + ", ".join(map(str, range(1, 101))) + "], seed: ["
     + ", ".join(map(str, range(101))) + "], participants.budget: [1, 2]}\n",
     "study.yaml: factors: 100 x 101 x 2 levels make 20,200 cells; an experiment runs at most 10,000"),
    ("replications: 2\nname: " + "x" * 5_000 + "\n",
     "study.yaml: name: String should have at most 100 characters, got 'xxxxx"),
    ("replications: 2\nfactors: {" + "a" * 400 + ": [1]}\n",
     "String should have at most 300 characters, got 'aaaa"),
])
def test_schema_errors_name_file_and_field(tmp_path: Path, body: str, expected: str) -> None:
    with pytest.raises(ExperimentError) as caught:
        read_spec(write(tmp_path, SMOKE + body))
    assert expected in str(caught.value) and len(str(caught.value)) < 1_000


def test_a_bad_value_or_path_names_the_factor(tmp_path: Path) -> None:
    with pytest.raises(ExperimentError) as caught:
        load(write(tmp_path, SMOKE + "replications: 1\nfactors: {participants.budget: ['$50', 0.5]}\n"))
    message = str(caught.value)
    assert "study.yaml: factors: with participants.budget=0.5" in message
    assert "participants.generate.budget: money must be integer cents" in message
    with pytest.raises(ExperimentError, match=r"with tiers.small.bogus=1: scenario: tiers.small.bogus: unknown"):
        load(write(tmp_path, SMOKE + "replications: 1\nfactors: {tiers.small.bogus: [1]}\n"))
    with pytest.raises(ExperimentError, match=r"tiers.medium is not a field \(fields here: frontier, small\)"):
        load(write(tmp_path, SMOKE + "replications: 1\nfactors: {tiers.medium.backend: [offline]}\n"))
    with pytest.raises(ExperimentError, match=r"study.yaml: scenario: .*nope.yaml: no such scenario file"):
        load(write(tmp_path, "scenario: nope.yaml\nreplications: 1\n"))


# --- paths -------------------------------------------------------------------------------


def deal_data() -> dict:
    scenario, _ = load_scenario(SCENARIOS / "deal.yaml")
    return as_data(scenario)


def test_star_sets_every_market_share_and_rebalances_the_other_tiers() -> None:
    data = set_path(deal_data(), parse_path("markets[*].tiers.small.share"), 0.2)
    assert [m["tiers"] for m in data["markets"]] == [
        {"frontier": 0.8, "small": 0.2}, {"frontier": 0.8, "small": 0.2},
        {"frontier": 0.8, "small": 0.2}, {"frontier": 0.8, "small": 0.2},
    ]
    one = set_path(deal_data(), parse_path("markets[1].tiers.small"), 1.0)
    assert [m["tiers"] for m in one["markets"]][:3] == [{"frontier": 1.0}, {"small": 1.0},
                                                        {"frontier": 0.5, "small": 0.5}]


def test_names_in_brackets_pick_markets_and_leave_the_others() -> None:
    data = set_path(deal_data(), parse_path("markets[B,C].tiers.small.share"), 0.2)
    assert [m["tiers"] for m in data["markets"]] == [
        {"frontier": 1.0}, {"frontier": 0.8, "small": 0.2}, {"frontier": 0.8, "small": 0.2}, {"frontier": 1.0}]
    assert set_path(deal_data(), parse_path("markets[ name = C ].tiers.small.share"), 0.2) == set_path(
        deal_data(), parse_path("markets[2].tiers.small.share"), 0.2)
    assert set_path(deal_data(), parse_path("markets[1].tiers.small.share"), 0.2) != data  # [1] is an index
    with pytest.raises(FactorError) as caught:
        set_path(deal_data(), parse_path("markets[B,X,Y].tiers.small.share"), 0.2)
    assert str(caught.value) == ("markets[B,X,Y].tiers.small.share: no market named X, Y in markets "
                                 "(the markets are A, B, C, D)")
    with pytest.raises(FactorError, match=r"days is not a list of named entries, so \[A\] does not apply"):
        set_path(deal_data(), parse_path("days[A]"), 1)
    with pytest.raises(FactorError, match=r"names separated by commas, each once"):
        parse_path("markets[B,B].tiers")


def test_a_market_gaining_or_losing_a_tier_is_named() -> None:
    scenario, catalog = load_scenario(SCENARIOS / "deal.yaml")
    named = apply(scenario, catalog, {"markets[B,C].tiers.small.share": 0.8}, "test")
    assert tier_changes(scenario, named) == []
    star = apply(scenario, catalog, {"markets[*].tiers.small.share": 0.8}, "test")
    assert [c.text() for c in tier_changes(scenario, star)] == [
        "A: frontier only -> frontier + small (gains small)", "D: frontier only -> frontier + small (gains small)"]
    whole = apply(scenario, catalog, {"markets[B].tiers.small": 1.0}, "test")
    assert [(c.market, c.gains, c.loses) for c in tier_changes(scenario, whole)] == [("B", (), ("frontier",))]
    assert tier_changes(scenario, whole)[0].text() == "B: frontier + small -> small only (loses frontier)"


def test_the_example_experiment_keeps_the_control_markets_all_frontier() -> None:
    plan = load(ROOT / "experiments" / "tier_share.yaml")
    assert list(plan.factors) == ["markets[B,C].tiers.small.share", "participants.budget"]
    assert len(plan.cells) == 6
    for cell in plan.cells:
        tiers = {m.name: m.tiers for m in cell.scenario.markets}
        assert tiers["A"] == tiers["D"] == {"frontier": 1.0}
        share = cell.values["markets[B,C].tiers.small.share"]
        assert tiers["B"] == tiers["C"] == pytest.approx({"frontier": 1 - share, "small": share})
        assert cell.tier_changes == ()


def test_paths_reach_lists_tiers_options_and_money() -> None:
    scenario, catalog = load_scenario(SCENARIOS / "deal.yaml")
    changed = apply(scenario, catalog, {
        "participants.budget": "$50", "tiers.small.options.attention": 3, "tiers[*].profile": "frontier",
        "markets[0].name": "Z", "rules.offer_ttl": 3600,
    }, "test")
    assert changed.participants.generate.budget == 5000
    assert changed.tiers["small"].options == {"attention": 3}
    assert {t.profile for t in changed.tiers.values()} == {"frontier"}
    assert [m.name for m in changed.markets] == ["Z", "B", "C", "D"]
    assert changed.rules.offer_ttl == 3600
    assert scenario.participants.generate.budget == 10_000  # the base is not changed


@pytest.mark.parametrize(("path", "value", "message"), [
    ("markets[9].tiers.small", 0.5, "markets has 4 entries; [9] is out of range"),
    ("days[*]", 1, "days is not a list or mapping"),
    ("days.x", 1, "days is a value (5), not a mapping"),
    ("markets[*].tiers.small.share", 1.5, "a share is a number between 0 and 1"),
    ("participants.people[0].budget", 1, "participants.people has 0 entries"),
])
def test_path_errors_say_what_is_wrong(path: str, value: object, message: str) -> None:
    with pytest.raises(FactorError) as caught:
        set_path(deal_data(), parse_path(path), value)
    assert message in str(caught.value)
    assert path in str(caught.value)


def test_command_line_assignments_read_values_as_yaml() -> None:
    path, value = parse_assignment("markets[*].tiers.small.share=0.8")
    assert (path.parts, value) == (("markets", "*", "tiers", "small", "share"), 0.8)
    assert parse_assignment("participants.budget=$50")[1] == "$50"
    assert parse_assignment("profiles.medium.anchor=[1.0, 1.2]")[1] == [1.0, 1.2]
    with pytest.raises(FactorError, match="expected PATH=VALUE"):
        parse_assignment("days")
    with pytest.raises(FactorError, match=r"^--set seed: an integer of 5,000 digits \(at most 4,000 are read\)$"):
        parse_assignment("seed=" + "9" * 5_000)


def test_an_error_quotes_a_long_value_clipped() -> None:
    scenario, catalog = load_scenario(SCENARIOS / "deal.yaml")
    with pytest.raises(FactorError) as caught:
        apply(scenario, catalog, {"participants.generate.count": int("9" * 4_000)}, "--set")
    message = str(caught.value)
    assert message.count("... (4,000 characters)") == 2 and len(message) < 400


# --- grid, cells, seeds --------------------------------------------------------------------


def test_grid_is_the_product_of_the_factors_unless_cells_are_listed(tmp_path: Path) -> None:
    grid = load(write(tmp_path, SMOKE + "replications: 2\nfactors:\n  markets[*].tiers.small.share: [0.25, 0.5, 0.75]"
                      "\n  participants.budget: ['$50', '$100']\n"))
    assert [c.id for c in grid.cells] == ["c01", "c02", "c03", "c04", "c05", "c06"]
    assert grid.cells[1].values == {"markets[*].tiers.small.share": 0.25, "participants.budget": "$100"}
    assert grid.cells[1].scenario.participants.generate.budget == 10_000
    assert grid.cells[4].scenario.markets[0].tiers == {"frontier": 0.25, "small": 0.75}
    listed = load(write(tmp_path, SMOKE + "replications: 2\ncells:\n  - {days: 2}\n"
                        "  - {days: 1, participants.budget: '$20'}\n"))
    assert [c.values for c in listed.cells] == [{"days": 2}, {"days": 1, "participants.budget": "$20"}]
    assert listed.factors == {"days": [2, 1], "participants.budget": ["$20"]}
    assert listed.cells[0].scenario.participants.generate.budget == 10_000


def test_seeds_are_derived_from_cell_and_replication_and_stated(tmp_path: Path) -> None:
    a = derive_seed(7, {"days": 1}, 1)
    assert a == derive_seed(7, {"days": 1}, 1)
    assert len({a, derive_seed(7, {"days": 2}, 1), derive_seed(7, {"days": 1}, 2), derive_seed(8, {"days": 1}, 1)}) == 4
    assert derive_seed(7, {"a": 1, "b": 2}, 3) == derive_seed(7, {"b": 2, "a": 1}, 3)
    assert [derive_seed(7, {"days": d}, 2, common=True) for d in (1, 2)] == [8, 8]
    first = load(write(tmp_path, SMOKE + "replications: 3\nfactors: {days: [1, 2]}\n"))
    more = load(write(tmp_path, SMOKE + "replications: 3\nfactors: {days: [3, 1, 2]}\n", "more.yaml"))
    seeds = {(r.cell.values["days"], r.replication): r.seed for r in plan_runs(first, tmp_path)}
    assert seeds == {(r.cell.values["days"], r.replication): r.seed for r in plan_runs(more, tmp_path)
                     if r.cell.values["days"] != 3}  # adding a level keeps the other cells' seeds
    runs = plan_runs(first, tmp_path / "x")
    assert runs[0].run_dir == tmp_path / "x" / "cells" / "c01" / f"c01-r01-s{runs[0].seed}"


# --- running --------------------------------------------------------------------------------


TWO_BY_TWO = SMOKE + "replications: 2\nfactors:\n  markets[*].tiers.small.share: [0.25, 0.75]\n"


def ledgers(folder: Path) -> dict[str, str]:
    record = json.loads((folder / EXPERIMENT_FILE).read_text())
    return {r["run_dir"]: export(folder / r["run_dir"]) for r in record["runs"]}


@pytest.mark.slow
def test_results_are_identical_at_one_and_two_workers_and_stated_with_seeds(tmp_path: Path) -> None:
    plan = load(write(tmp_path, TWO_BY_TWO))
    one = run(plan, out=tmp_path / "one", workers=1, report=False)
    two = run(plan, out=tmp_path / "two", workers=2, report=False)
    assert one["complete"] and two["complete"]
    assert ledgers(tmp_path / "one") == ledgers(tmp_path / "two")
    table = pl.read_parquet(tmp_path / "one" / "runs.parquet")
    assert table.equals(pl.read_parquet(tmp_path / "two" / "runs.parquet"))
    assert table.height == 2 * 2 * 1 * 2  # cells x replications x markets x tiers
    assert table.columns[:5] == ["cell", "replication", "seed", "run", "markets[*].tiers.small.share"]
    assert set(table["seed"].to_list()) == {r["seed"] for r in one["runs"]}
    small = table.filter(pl.col("tier") == "small").sort("cell", "replication")
    assert small["tier_share"].to_list() == [0.25, 0.25, 0.75, 0.75]
    assert {"deals_per_participant", "price_ratio_as_seller", "volume_sold_cents"} <= set(table.columns)
    for entry in one["runs"]:
        assert json.loads((tmp_path / "one" / entry["run_dir"] / "summary.json").read_text())["seed"] == entry["seed"]


@pytest.mark.slow
def test_an_interrupted_experiment_continues_without_redoing_finished_runs(tmp_path: Path) -> None:
    plan = load(write(tmp_path, TWO_BY_TWO))
    out = tmp_path / "exp"
    runs = plan_runs(plan, out)
    reference = tmp_path / "reference"
    run(plan, out=reference, workers=1, report=False)

    def interrupt(cell: str) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # Ctrl-C as the first run finishes
        run(plan, out=out, workers=1, on_done=interrupt, report=False)
    done = [r for r in runs if (r.run_dir / "summary.json").is_file()]
    assert runs[0] in done and runs[3] not in done
    stamp = (runs[0].run_dir / "ledger.sqlite").stat().st_mtime_ns
    # the last run was stopped mid-day by the interruption
    prepared = runner.plan(out / "cells" / "c02" / "scenario.yaml", seed=runs[3].seed, run_dir=runs[3].run_dir)
    folder = RunFolder.create(runs[3].run_dir.parent, runs[3].run_dir.name, exact=runs[3].run_dir)
    assert not runner.start(prepared, folder, until=4 * 3600, after_run=False).complete

    record = run(plan, out=out, workers=1, report=False)
    assert record["complete"] and record["skipped"] == len(done)
    assert (runs[0].run_dir / "ledger.sqlite").stat().st_mtime_ns == stamp  # not redone
    assert ledgers(out) == ledgers(reference)
    assert pl.read_parquet(out / "runs.parquet").equals(pl.read_parquet(reference / "runs.parquet"))
    assert run(plan, out=out, workers=1, report=False)["skipped"] == 4
    with pytest.raises(ExperimentError, match="holds a different experiment"):
        run(load(write(tmp_path, SMOKE + "replications: 3\n", "other.yaml")), out=out, report=False)
    with Ledger(runs[3].run_dir / "ledger.sqlite") as ledger:
        assert ledger.status("state") == "complete"


@pytest.mark.slow
def test_batch_run_returns_the_tidy_frame(tmp_path: Path) -> None:
    frame = batch_run(SCENARIOS / "smoke.yaml", parameters={"participants.budget": ["$50", "$100"], "days": 1},
                      replications=2, workers=2)
    assert isinstance(frame, pl.DataFrame)
    assert frame.height == 2 * 2 * 2
    assert frame["participants.budget"].unique().sort().to_list() == ["$100", "$50"]
    assert "days" not in frame.columns  # a single value is set, not varied
    assert frame.group_by("cell").agg(pl.col("seed").n_unique())["seed"].to_list() == [2, 2]
    kept = batch_run(SCENARIOS / "smoke.yaml", parameters={"participants.budget": ["$50", "$100"], "days": 1},
                     replications=2, workers=1, out=tmp_path / "kept")
    assert kept.equals(frame)
    assert (tmp_path / "kept" / "runs.parquet").is_file()


# --- declared profiles: a third tier is one block of YAML -----------------------------------


def test_a_three_tier_scenario_runs(tmp_path: Path) -> None:
    from agents.offline import PROFILES, Profile, resolve_profile
    from market.scenario import ProfileSpec
    from studies.factors import write_resolved

    assert set(ProfileSpec.model_fields) - {"base", "description"} == set(Profile.__dataclass_fields__) - {"name"}
    scenario, catalog = load_scenario(SCENARIOS / "three_tiers.yaml")
    small = apply(scenario, catalog, {"days": 1, "participants.generate.count": 12}, "test")
    path = write_resolved(small, SCENARIOS / "catalog.csv", tmp_path / "scenario")
    prepared = runner.plan(path)  # the resolved file (every setting written out) reads back the same
    medium = prepared.policies["medium"].profile
    assert medium == resolve_profile("medium", scenario.profiles)
    assert (medium.attention, medium.counters, medium.threads_per_turn, medium.anchor) == (4, True, None, (1.05, 1.25))
    assert medium.bids_per_turn == PROFILES["small"].bids_per_turn  # left out: the base's
    result = runner.start(prepared, RunFolder.create(tmp_path, "run"), after_run=False)
    assert result.complete
    mixed = result.summary.as_json()["markets"][1]
    assert sorted(mixed["tiers"]) == ["frontier", "medium", "small"]
    assert sum(t["participants"] for t in mixed["tiers"].values()) == 12


def test_an_unknown_profile_says_how_to_declare_one() -> None:
    from market.backends import BackendError

    scenario, catalog = load_scenario(SCENARIOS / "smoke.yaml")
    changed = apply(scenario, catalog, {"tiers.small.profile": "medium"}, "test")
    with pytest.raises(BackendError) as caught:
        from market.backends import BackendContext, build_policies

        build_policies(BackendContext(scenario=changed, run_dir=None, options={}))
    message = str(caught.value)
    assert "tiers.small: tier 'small' uses unknown offline profile 'medium'" in message
    assert "built in: frontier, small; declared in this scenario: none" in message
    assert "profiles: {medium: {base: small, attention: 4, counters: true}}" in message


@pytest.mark.parametrize(("profiles", "message"), [
    ({"a": {"base": "b"}, "b": {"base": "a"}}, "profiles.a: its bases go round in a circle (a -> b -> a)"),
    ({"m": {"base": "small", "anchor": [1.3, 1.1]}}, "profiles.m.anchor: a range [low, high] needs low <= high"),
    ({"m": {"base": "small", "attention": 0}}, "profiles.m.attention: Input should be greater than or equal to 1"),
    ({"m": {"base": "small", "threads_per_turn": "many"}}, "profiles.m.threads_per_turn"),
    ({"m": {"base": "small", "patience": 3}}, "profiles.m.patience: unknown key"),
])
def test_declared_profiles_are_typed(profiles: dict, message: str) -> None:
    from market.scenario import ScenarioError, validate_scenario

    data = {**deal_data(), "profiles": profiles}
    with pytest.raises(ScenarioError) as caught:
        validate_scenario(data, "three.yaml")
    assert f"three.yaml: {message}" in str(caught.value)
