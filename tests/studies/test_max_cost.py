"""The cost cap is a run hook any caller uses: a sweep's and an experiment's runs stop cleanly at --max-cost,
and the same call with the same folder resumes them to the end, as if never stopped."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from analysis.export import run_tables
from market.clock import HOUR
from running import runner
from running.hooks import CostCap, compose, cost_cap
from running.runfolder import RunFolder
from studies.experiment import load
from studies.experiment import run as run_experiment
from studies.sweep import sweep
from tests.conftest import SCENARIOS


def costly_smoke(tmp_path: Path) -> Path:
    """smoke.yaml with the frontier tier on the test backend that costs $0.001 a turn."""
    scenario = yaml.safe_load((SCENARIOS / "smoke.yaml").read_text())
    scenario["catalog"] = str(SCENARIOS / "catalog.csv")
    scenario["tiers"]["frontier"] = {"backend": "tests.market.policies:costly"}
    path = tmp_path / "costly.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    return path


def test_hooks_compose_in_order_and_the_cap_stops_the_run(tmp_path: Path) -> None:
    seen: list[str] = []
    hook = compose(None, lambda _m, at: seen.append(f"a{at}"), None, lambda _m, at: seen.append(f"b{at}"))
    assert compose(None, None) is None and cost_cap(None) is None
    with pytest.raises(ValueError, match="--max-cost"):
        cost_cap(-1.0)
    prepared = runner.plan(costly_smoke(tmp_path))
    result = runner.start(prepared, RunFolder.create(tmp_path, "r", exact=tmp_path / "r"),
                          on_batch=compose(hook, CostCap(0.005)), after_run=False)
    assert seen[:2] == [f"a{seen[0][1:]}", f"b{seen[0][1:]}"]  # each batch: a, then b
    assert not result.complete and result.cause == "max_cost" and result.summary is not None
    assert result.summary.stop_cause == "max_cost" and result.summary.sections()["costly"]["cost_usd"] >= 0.005
    assert result.model is not None and result.model.now < 24 * HOUR


@pytest.mark.slow
def test_a_sweep_stops_each_run_at_the_cap_and_resumes_them(tmp_path: Path) -> None:
    scenario = costly_smoke(tmp_path)
    capped = sweep(scenario, 2, out=tmp_path / "sweep", seed=7, report=False, max_cost=0.005)
    assert not capped["complete"] and capped["stopped"] == ["smoke-s7", "smoke-s8"]
    for name in capped["stopped"]:
        summary = RunFolder.open(tmp_path / "sweep" / name).read_summary()
        assert summary is not None and summary.status == "stopped" and summary.stop_cause == "max_cost"
    again = sweep(scenario, 2, out=tmp_path / "sweep", seed=7, report=False)
    assert again["complete"] and again["stopped"] == []
    whole = runner.start(runner.plan(scenario, seed=7), RunFolder.create(tmp_path, "w", exact=tmp_path / "whole"),
                         after_run=False)
    assert whole.complete
    resumed, uncapped = run_tables(tmp_path / "sweep" / "smoke-s7", "x"), run_tables(tmp_path / "whole", "x")
    assert resumed["deals"].equals(uncapped["deals"]) and resumed["offers"].equals(uncapped["offers"])


@pytest.mark.slow
def test_an_experiment_stops_each_run_at_the_cap_and_resumes_them(tmp_path: Path) -> None:
    study = tmp_path / "study.yaml"
    study.write_text(f"scenario: {costly_smoke(tmp_path)}\nreplications: 1\nfactors: {{participants.budget: "
                     "['$50', '$100']}\n", encoding="utf-8")
    plan = load(study)
    capped = run_experiment(plan, out=tmp_path / "exp", report=False, max_cost=0.005)
    assert not capped["complete"] and capped["failed"] == []
    assert capped["stopped"] == sorted(r["run_dir"] for r in capped["runs"])
    stopped = [RunFolder.open(tmp_path / "exp" / r["run_dir"]).read_summary() for r in capped["runs"]]
    assert [s.stop_cause for s in stopped if s is not None] == ["max_cost", "max_cost"]
    again = run_experiment(plan, out=tmp_path / "exp", report=False)
    assert again["complete"] and again["rows"] > 0


@pytest.mark.parametrize("command", ["sweep", "experiment"])
def test_the_commands_take_max_cost(command: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from studies import experiment as experiment_command
    from studies import sweep as sweep_command

    app = sweep_command.app if command == "sweep" else experiment_command.app
    target = SCENARIOS / "smoke.yaml" if command == "sweep" else tmp_path / "none.yaml"
    refused = CliRunner().invoke(app, [str(target), "--max-cost", "-1"])
    assert refused.exit_code == 2 and "--max-cost" in refused.output
    assert "--max-cost" in CliRunner().invoke(app, ["--help"]).output
