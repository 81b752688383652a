"""Rules stated once: everything a model prompt says about the market's rules comes from the scenario's ``Rules``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from agents.llm import prompts
from market.domain import Item, Participant, Want
from market.events import Rules
from market.scenario import load_scenario
from tests.llm.conftest import ROOT, SMOKE, model_tiers, run_model


def _person() -> Participant:
    lamp = Item(id="p1-i1", kind="lamp", title="Desk lamp", category="home", value=2000)
    return Participant(id="p1", name="Ada Fox", budget=10_000, items=(lamp,), reserves={"p1-i1": 1200},
                       wants=(Want(kind="mug", title="Mug", max_price=900),))


def changed(field: str) -> Any:
    """A valid value for ``Rules.<field>`` other than its default; a new kind of rule needs a line here."""
    default = Rules.model_fields[field].default
    if isinstance(default, bool):
        return not default
    if isinstance(default, int):
        return default + 1  # a second more: the prompt must be exact, not rounded
    raise AssertionError(f"Rules.{field}: say here how to change a {type(default).__name__} rule")


@pytest.mark.parametrize("field", sorted(Rules.model_fields))
def test_changing_each_rule_changes_the_prompt(field: str) -> None:
    """Every rule (a new one included, automatically) is in the prompt, unless declared as not stated."""
    person, text = _person(), "Be brief."
    base = prompts.system_text(person, text, Rules())
    other = prompts.system_text(person, text, Rules(**{field: changed(field)}))
    if field in prompts.RULES_NOT_STATED:
        assert other == base, f"Rules.{field} is declared not stated, yet the prompt changes with it"
    else:
        assert other != base, f"the prompt does not change with Rules.{field}"


def test_rules_not_stated_are_rules_with_a_reason() -> None:
    for field, reason in prompts.RULES_NOT_STATED.items():
        assert field in Rules.model_fields and len(reason.split()) >= 3, field


def test_the_fixed_text_states_no_rule_value() -> None:
    """The shared prefix says how the market works; how long and whether are rendered from the rules."""
    for said in ("one day", "1 day", "24 hours", "six hours", "market enforces"):
        assert said not in prompts.RULES
    assert "stays open for 6 hours after" in prompts.rules_text(Rules(offer_ttl=6 * 3600))
    assert "1 day 1 hour 1 minute 1 second" in prompts.rules_text(Rules(offer_ttl=90_061))
    assert "does not enforce" in prompts.rules_text(Rules(enforce_mandate=False))


def test_every_shipped_scenario_gets_its_own_offer_lifetime() -> None:
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        rules = load_scenario(path)[0].rules
        text = prompts.system_text(_person(), "x", rules)
        assert f"stays open for {prompts.duration_text(rules.offer_ttl)} after" in text, path.name
    assert "stays open for 6 hours after" in prompts.rules_text(load_scenario(ROOT / "scenarios/deal.yaml")[0].rules)


@pytest.mark.slow
def test_a_run_sends_its_scenario_s_rules(fake_server, tmp_path: Path) -> None:
    """End to end: the requests a model-backed run records say the scenario's rules, not the defaults."""
    data = yaml.safe_load(SMOKE.read_text(encoding="utf-8"))
    data["catalog"] = str(SMOKE.parent / data["catalog"])
    data["rules"] = {"offer_ttl": 5400, "enforce_mandate": False}
    scenario = tmp_path / "rules.yaml"
    scenario.write_text(yaml.safe_dump(data), encoding="utf-8")
    server = fake_server("anthropic")
    result = run_model(tmp_path / "run", model_tiers(server), scenario=scenario)
    assert result.complete
    calls = [json.loads(line) for line in (tmp_path / "run" / "cassette.jsonl").read_text().splitlines()]
    systems = {json.dumps(c["request"]["system"]) for c in calls if c["kind"] == "call"}
    assert systems
    expected = prompts.rules_text(Rules(offer_ttl=5400, enforce_mandate=False))
    for system in systems:
        assert json.dumps(expected)[1:-1] in system
        assert "1 day" not in system and "market enforces" not in system
