"""Scenario files: validation with errors that name the file and field; nothing written on failure."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from market.money import MAX_CENTS, MAX_MONEY_TEXT, format_money
from market.scenario import (
    MAX_YAML_BYTES,
    ScenarioError,
    assign_tiers,
    build_participants,
    load_scenario,
    scenario_json_schema,
)
from tests.conftest import SCENARIOS, run_cli


def write(tmp_path: Path, data: object, name: str = "deal.yaml", catalog: str | None = None) -> Path:
    (tmp_path / "catalog.csv").write_text(catalog if catalog is not None else (SCENARIOS / "catalog.csv").read_text())
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def deal_data() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((SCENARIOS / "deal.yaml").read_text())


def test_reference_scenario_matches_the_published_week() -> None:
    scenario, catalog = load_scenario(SCENARIOS / "deal.yaml")
    people = build_participants(scenario, catalog)
    assert len(people) == 69 and {p.budget for p in people} == {10_000}
    assert len(catalog) >= 150
    assert sum(len(p.items) for p in people) >= 500
    assert [m.name for m in scenario.markets] == ["A", "B", "C", "D"]
    ids = [p.id for p in people]
    for name, expected in [("A", {"frontier": 69}), ("D", {"frontier": 69})]:
        tiers = assign_tiers(scenario, scenario.market(name), ids)
        assert {t: list(tiers.values()).count(t) for t in set(tiers.values())} == expected
    b = assign_tiers(scenario, scenario.market("B"), ids)
    c = assign_tiers(scenario, scenario.market("C"), ids)
    assert sorted(list(b.values()).count(t) for t in ("frontier", "small")) == [34, 35]
    assert b != c, "B and C draw their own random 50/50 assignment"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["markets"][1]["tiers"].update(frontier=1.5),
         "deal.yaml: markets[1].tiers.frontier: share must be between 0 and 1, got 1.5"),
        (lambda d: d.update(colour="red"), "deal.yaml: colour: unknown key"),
        (lambda d: d["participants"]["generate"].update(budget="-$5"),
         "deal.yaml: participants.generate.budget: money cannot be negative"),
        (lambda d: d["markets"][0]["tiers"].update(huge=0.0), "tier 'huge' is not defined"),
        (lambda d: d.update(days="many"), "deal.yaml: days:"),
        (lambda d: d["timing"].update(tick_minutes=7), "timing.tick_minutes: tick must divide an hour"),
        (lambda d: d.pop("markets"), "deal.yaml: markets: required field is missing"),
        (lambda d: d["working_hours"].update(start=18, end=9), "working_hours: start must be before end"),
        (lambda d: d["participants"]["generate"].update(budget="$1,000,000.01"),
         "deal.yaml: participants.generate.budget: money is at most $1,000,000.00 (100,000,000 cents)"),
        (lambda d: d["participants"]["generate"].update(budget=10**19),
         "deal.yaml: participants.generate.budget: money is at most $1,000,000.00"),
        (lambda d: d["participants"]["generate"].update(budget="$\u0661\u0660\u0660"),
         "deal.yaml: participants.generate.budget: money is written with the digits 0-9 only"),
        (lambda d: d["participants"]["generate"].update(budget="9" * 4_300),
         "deal.yaml: participants.generate.budget: cannot read a 4,300-character text as money"),
        (lambda d: d["participants"]["generate"].update(max_pay_ratio={"min": 1, "max": float("inf")}),
         "deal.yaml: participants.generate.max_pay_ratio.max: Input should be a finite number"),
        (lambda d: d["participants"]["generate"].update(items_per_person={"min": 1, "max": 10**9}),
         "deal.yaml: participants.generate.items_per_person.max: Input should be less than or equal to 10000"),
        (lambda d: d.update(seed=-1), "deal.yaml: seed: Input should be greater than or equal to 0, got -1"),
        (lambda d: d.update(seed=2**63), "deal.yaml: seed: Input should be less than or equal to 9223372036854775807"),
        (lambda d: d.update(markets=[{"name": f"M{i}", "tiers": {"frontier": 1.0}} for i in range(101)]),
         "deal.yaml: markets: List should have at most 100 items"),
        (lambda d: d["tiers"]["small"].update(timeout=10**9),
         "deal.yaml: tiers.small.timeout: Input should be less than or equal to 3600"),
        (lambda d: d["markets"][0].update(name="A" * 101),
         "deal.yaml: markets[0].name: String should have at most 100"),
        (lambda d: d.update(streams=3), "deal.yaml: streams: Input should be 1 or 2"),
    ],
)
def test_bad_fields_are_named(tmp_path: Path, change, expected: str) -> None:  # type: ignore[no-untyped-def]
    data = deal_data()
    change(data)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(write(tmp_path, data))
    assert expected in str(caught.value)


def test_what_pydantic_says_it_got_is_not_said_twice(tmp_path: Path) -> None:
    data = deal_data()
    data["days"] = 1.5  # int_from_float: the one message of pydantic's that says "got" (known by its type)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(write(tmp_path, data))
    assert "days: Input should be a valid integer, got a number with a fractional part" in str(caught.value)
    assert "got 1.5" not in str(caught.value)


def test_bad_yaml_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"deal.yaml: line \d+, column \d+: not valid YAML"):
        load_scenario(write(tmp_path, "name: deal\nmarkets: [\n  - {name: A\n"))


def test_an_integer_too_long_to_read_is_refused_where_it_is(tmp_path: Path) -> None:
    """Python reads no int of over 4,300 digits (its error names no line): the loader stops at 4,000, with
    the line and column; a shorter one reaches the schema, whose error names the field and quotes a clip."""
    text = re.sub(r"(?m)^seed: .*$", "seed: " + "9" * 5_000, (SCENARIOS / "deal.yaml").read_text(), count=1)
    line = 1 + text[:text.index("seed: 9")].count("\n")
    with pytest.raises(ScenarioError, match=rf"^deal.yaml: line {line}, column 7: an integer of 5,000 digits "
                                            r"\(at most 4,000 are read\)$"):
        load_scenario(write(tmp_path, text))
    data = deal_data()
    data["participants"]["generate"]["count"] = int("9" * 4_000)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(write(tmp_path, data))
    message = str(caught.value)
    assert message.startswith("deal.yaml: participants.generate.count: Input should be less than or equal to")
    assert message.endswith("... (4,000 characters)") and len(message) < 300


def test_a_settings_file_too_large_to_read_whole_is_refused_unread(tmp_path: Path) -> None:
    path = write(tmp_path, deal_data())
    with path.open("r+b") as handle:  # sparse: the size without the disk
        handle.truncate(MAX_YAML_BYTES + 1)
    with pytest.raises(ScenarioError, match=r"deal.yaml: 67,108,865 bytes; a scenario file is read whole"):
        load_scenario(path)


def test_empty_catalog_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"catalog\.csv is empty"):
        load_scenario(write(tmp_path, deal_data(), catalog="kind,title,category,value\n"))
    with pytest.raises(ScenarioError, match="no such scenario file"):
        load_scenario(tmp_path / "nope.yaml")


def test_schema_for_editors_is_current() -> None:
    import json

    assert json.loads((SCENARIOS / "scenario.schema.json").read_text()) == scenario_json_schema()


def test_explicit_people_and_fixed_tiers(tmp_path: Path) -> None:
    data = {
        "name": "tiny", "seed": 1, "days": 1,
        "participants": {"people": [
            {"id": "ann", "name": "Ann", "budget": "$50", "items": [{"kind": "folding-bike", "condition": "broken",
                                                                      "reserve": "$30"}]},
            {"id": "bob", "name": "Bob", "budget": 5000, "wants": [{"kind": "folding-bike", "max_price": "$70"}]},
        ]},
        "tiers": {"frontier": {}, "small": {}},
        "markets": [{"name": "A", "tiers": {"small": 1.0}, "assign": {"ann": "frontier"}}],
    }
    scenario, catalog = load_scenario(write(tmp_path, data, "tiny.yaml"))
    ann, bob = build_participants(scenario, catalog)
    assert ann.items[0].title == "Folding bike (broken)" and ann.items[0].value == 4_800
    assert ann.reserves == {"ann-i1": 3_000} and bob.wants[0].max_price == 7_000
    assert assign_tiers(scenario, scenario.markets[0], ["ann", "bob"]) == {"ann": "frontier", "bob": "small"}


def person_data(**person: object) -> dict:  # type: ignore[type-arg]
    return {
        "name": "tiny", "seed": 1, "days": 1,
        "participants": {"people": [
            {"id": "ann", "name": "Ann", "budget": "$50", "items": [{"kind": "folding-bike"}]},
            {"id": "bob", "name": "Bob", "budget": 5000, "wants": [{"kind": "folding-bike", "max_price": "$70"}]}
            | person,
        ]},
        "tiers": {"small": {}},
        "markets": [{"name": "A", "tiers": {"small": 1.0}}],
    }


@given(st.one_of(
    st.integers(min_value=MAX_CENTS + 1, max_value=10**40),
    st.integers(min_value=MAX_CENTS + 1, max_value=10**40).map(format_money),
    st.text(alphabet=st.sampled_from("0123456789\u0660\u0669\uff11"), min_size=1, max_size=8).filter(
        lambda t: not t.isascii()),
    st.integers(min_value=MAX_MONEY_TEXT + 1, max_value=5_000).map(lambda n: "1" * n),
))
@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_amounts_beyond_the_bound_in_a_scenario_are_named(tmp_path: Path, amount: object) -> None:
    for person in ({"budget": amount}, {"wants": [{"kind": "folding-bike", "max_price": amount}]},
                   {"items": [{"kind": "folding-bike", "reserve": amount}]}):
        field = {"budget": "budget", "wants": "wants[0].max_price", "items": "items[0].reserve"}[next(iter(person))]
        where = re.escape(f"tiny.yaml: participants.people[1].{field}: ")
        with pytest.raises(ScenarioError, match=where + "(money|cannot read a)"):
            load_scenario(write(tmp_path, person_data(**person), "tiny.yaml"))


def test_catalog_values_are_bounded_and_derived_prices_stay_within_it(tmp_path: Path) -> None:
    catalog = "kind,title,category,value\nfolding-bike,Folding bike,bikes,$1000000.01\n"
    with pytest.raises(ScenarioError, match=r"catalog.csv: line 2: .*money is at most \$1,000,000.00"):
        load_scenario(write(tmp_path, person_data(), "tiny.yaml", catalog=catalog))
    catalog = "kind,title,category,value\nfolding-bike,Folding bike,bikes,\"$1,000,000\"\nkettle,Kettle,home,$20\n"
    data = person_data()
    data["participants"]["people"][0]["items"][0]["condition"] = "new"  # 130% of the catalog value
    data["participants"]["generate"] = {"count": 20, "max_pay_ratio": {"min": 5, "max": 9},
                                        "items_per_person": {"min": 1, "max": 1}}
    scenario, entries = load_scenario(write(tmp_path, data, "tiny.yaml", catalog=catalog))
    people = build_participants(scenario, entries)
    assert people[0].items[0].value == MAX_CENTS
    assert max(w.max_price for p in people for w in p.wants) == MAX_CENTS


def test_texts_in_a_scenario_are_bounded(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"participants.people\[1\].name: String should have at most 200"):
        load_scenario(write(tmp_path, person_data(name="B" * 201), "tiny.yaml"))
    with pytest.raises(ScenarioError, match=r"participants.people\[1\].quirks: List should have at most 20"):
        load_scenario(write(tmp_path, person_data(quirks=["odd"] * 21), "tiny.yaml"))


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("bad.yaml", "name: x\n  - oops: [", "not valid YAML"),
        ("unknown.yaml", None, "colour: unknown key"),
        ("share.yaml", None, "share must be between 0 and 1, got 1.5"),
        ("missing.yaml", "", "no such scenario file"),
    ],
)
def test_cli_exits_2_with_the_reason_and_writes_nothing(tmp_path: Path, name: str, content: str | None,
                                                         expected: str) -> None:
    data = deal_data()
    if name == "unknown.yaml":
        data["colour"] = "red"
    if name == "share.yaml":
        data["markets"][1]["tiers"]["frontier"] = 1.5
    path = tmp_path / name if name == "missing.yaml" else write(tmp_path, content if content else data, name)
    runs = tmp_path / "runs"
    result = run_cli(path, "--runs", runs, "--quiet")
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert not runs.exists(), "no run folder is left behind"
