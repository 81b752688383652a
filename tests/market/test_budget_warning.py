"""A scenario whose budgets cannot buy anything is flagged before the run (a warning: tiny budgets can be meant)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from market.scenario import budget_warnings, build_participants, load_scenario
from running import runner
from running.run import app
from tests.conftest import ROOT

SMOKE = ROOT / "scenarios" / "smoke.yaml"


CATALOG = "kind,title,category,value\nmug,Mug,kitchen,$0.50\nlamp,Desk lamp,home,$20.00\n"


def _scenario(tmp_path: Path, **participants: Any) -> Path:
    data = yaml.safe_load(SMOKE.read_text(encoding="utf-8"))
    data["catalog"] = str(SMOKE.parent / data["catalog"])
    if "people" in participants:  # a small catalog of our own: a mug at 50 cents, a lamp at $20
        (tmp_path / "catalog.csv").write_text(CATALOG, encoding="utf-8")
        data["catalog"] = "catalog.csv"
    data["participants"] = participants
    path = tmp_path / "budget.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_shipped_scenarios_are_not_flagged() -> None:
    # the check itself, not the whole plan: a plan also builds each tier's backend (local_tiers.yaml's needs the
    # `local` extra, which the README's test command does not install)
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        scenario, catalog = load_scenario(path)
        assert budget_warnings(scenario, build_participants(scenario, catalog)) == [], path.name


def test_a_bare_100_is_one_dollar_and_is_flagged(tmp_path: Path) -> None:
    path = _scenario(tmp_path, generate={"count": 8, "budget": 100})
    prepared = runner.plan(path)
    cheapest = min(item.value for person in prepared.participants for item in person.items)
    assert cheapest > 100
    (warning,) = prepared.warnings
    assert warning.startswith("participants.generate.budget: $1.00 cannot buy any item for sale")
    assert f"is worth ${cheapest // 100}.{cheapest % 100:02d}" in warning
    assert "its 8 participants can close no deal" in warning
    assert 'A bare number is cents (budget: 100 is $1.00); write "$100" for dollars' in warning
    assert "deliberate experiment" in warning


def test_each_person_s_budget_is_named(tmp_path: Path) -> None:
    people = [
        {"id": "a", "name": "Ann", "budget": "$50", "items": [{"kind": "lamp", "condition": "new"}], "wants": []},
        {"id": "b", "name": "Bo", "budget": 50, "items": [], "wants": [{"kind": "lamp", "max_price": 40}]},
    ]
    path = _scenario(tmp_path, people=people)
    warnings = runner.plan(path).warnings
    assert [w.split(":")[0] for w in warnings] == ["participants.people[1].budget"]
    assert "$0.50" in warnings[0] and "its participant can close no deal" in warnings[0]


def test_under_a_dollar_is_flagged_even_when_something_is_that_cheap(tmp_path: Path) -> None:
    people = [
        {"id": "a", "name": "Ann", "budget": 90, "items": [{"kind": "mug", "condition": "new"}], "wants": []},
        {"id": "b", "name": "Bo", "budget": "$20", "items": [{"kind": "lamp", "condition": "new"}], "wants": []},
    ]
    warnings = runner.plan(_scenario(tmp_path, people=people)).warnings
    assert len(warnings) == 1 and warnings[0].startswith("participants.people[0].budget: $0.90 is under $1.00.")


def test_the_command_line_warns_before_the_run_and_still_runs(tmp_path: Path) -> None:
    path = _scenario(tmp_path, generate={"count": 4, "budget": 100})
    result = CliRunner().invoke(app, [str(path), "--out", str(tmp_path / "run"), "-q", "--no-report"])
    assert result.exit_code == 0, result.output
    assert "warning: participants.generate.budget: $1.00 cannot buy any item" in result.output
    assert (tmp_path / "run" / "summary.json").is_file()
