"""`market sweep` and `market experiment` flag budgets that cannot buy anything before their runs, as `market run`
does, and still run."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from studies import experiment, sweep
from tests.conftest import ROOT

SMOKE = ROOT / "scenarios" / "smoke.yaml"
WARNING = "warning: participants.generate.budget: $1.00 cannot buy any item"


def _tiny_budgets(tmp_path: Path) -> Path:
    """smoke.yaml with four people of $1.00 each (a bare 100 is cents)."""
    data = yaml.safe_load(SMOKE.read_text(encoding="utf-8"))
    data["catalog"] = str(SMOKE.parent / data["catalog"])
    data["participants"] = {"generate": {"count": 4, "budget": 100}}
    path = tmp_path / "budget.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_a_sweep_warns_before_its_runs_and_still_runs(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    result = CliRunner().invoke(sweep.app, [str(_tiny_budgets(tmp_path)), "-n", "1", "--out", str(out), "-q",
                                            "--no-report"])
    assert result.exit_code == 0, result.output
    assert result.output.count(WARNING) == 1
    assert (out / "smoke-s7" / "summary.json").is_file()


def test_an_experiment_warns_per_cell_before_its_runs_and_still_runs(tmp_path: Path) -> None:
    study = tmp_path / "study.yaml"
    study.write_text(f"scenario: {_tiny_budgets(tmp_path)}\nreplications: 1\n"
                     "factors: {participants.generate.budget: [100, '$100']}\n", encoding="utf-8")
    out = tmp_path / "exp"
    result = CliRunner().invoke(experiment.app, [str(study), "--out", str(out), "-q", "--no-report"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "warning: c01 (participants.generate.budget=100): participants.generate.budget: $1.00 cannot buy" in text
    assert "c02 (" not in text  # $100 buys something: no warning for that cell
    assert len(list(out.glob("cells/*/*/summary.json"))) == 2
