"""The week over time: people's agents arriving over days, items put up over the week, deals per day."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from market.arrivals import arrival, arrivals, working_time
from market.events import ItemListed
from market.ledger import Ledger
from market.scenario import ScenarioError, WorkingHours, build_participants, load_scenario, validate_scenario
from running import runner
from running.runfolder import RunFolder
from tests.conftest import SCENARIOS


def week(tmp_path: Path, timing: dict[str, Any], name: str,
         tiers: dict[str, Any] | None = None) -> tuple[dict[str, Any], Path]:
    """deal.yaml's market A with ``timing`` (and ``tiers``) changes: its summary and its run folder."""
    data = yaml.safe_load((SCENARIOS / "deal.yaml").read_text())
    data["timing"] = {**data["timing"], **timing}
    data["tiers"] = tiers or data["tiers"]
    data["markets"] = [m for m in data["markets"] if m["name"] == "A"]
    data["catalog"] = str(SCENARIOS / "catalog.csv")
    data.pop("targets")  # one market of the week is not the published week
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    out = tmp_path / name
    result = runner.start(runner.plan(path), RunFolder.create(tmp_path, name, exact=out), after_run=False)
    return json.loads(result.folder.summary.read_text()), out


def test_working_days_map_onto_working_hours() -> None:
    hours = WorkingHours(start=9, end=18)
    assert working_time(0, hours) == 9 * 3600
    assert working_time(0.5, hours) == 9 * 3600 + int(4.5 * 3600)
    assert working_time(2.25, hours) == 2 * 86_400 + 9 * 3600 + int(2.25 * 3600)


def test_a_person_arrives_once_for_every_market_and_items_follow_their_arrival() -> None:
    scenario, catalog = load_scenario(SCENARIOS / "deal.yaml")
    scenario = scenario.model_copy(update={"timing": scenario.timing.model_copy(update={
        "arrival_days": scenario.timing.arrival_days.model_copy(update={"max": 2.0})})})
    people = build_participants(scenario, catalog)
    coming = arrivals(scenario, people)
    assert set(coming) == {p.id for p in people}
    assert coming[people[0].id] == arrival(scenario, people[0])  # keyed by seed and person: drawn the same again
    starts = [c.at for c in coming.values()]
    assert min(starts) >= 9 * 3600 and max(starts) < 2 * 86_400 + 18 * 3600
    assert len({s // 86_400 for s in starts}) == 2  # spread over the first two days
    for person in people:
        come = coming[person.id]
        assert set(come.items) == {i.id for i in person.items}
        assert all(come.at <= at for at in come.items.values())
    off = scenario.model_copy(update={"timing": scenario.timing.model_copy(
        update={"arrival_days": None, "item_arrival_days": None})})
    assert arrivals(off, people) == {}


def test_a_spread_week_trades_every_day_and_lists_no_item_before_it_is_put_up(tmp_path: Path) -> None:
    spread, out = week(tmp_path, {"arrival_days": {"min": 0, "max": 0.5}, "item_arrival_days": {"min": 0, "max": 3}},
                       "spread")
    market = spread["markets"][0]
    deals, listings = market["by_day"]["deals"], market["by_day"]["listings"]
    assert len(deals) == len(listings) == 5
    assert sum(deals) == market["deals"] and sum(listings) == market["listings"]
    assert all(n > 0 for n in deals[:4]) and all(n > 0 for n in listings[:4])
    assert max(deals) < 0.5 * sum(deals)  # no single day holds most of the week's deals
    scenario, catalog = load_scenario(tmp_path / "spread.yaml")
    coming = arrivals(scenario, build_participants(scenario, catalog))
    with Ledger(out / "ledger.sqlite") as ledger:
        listed = [r.event for r in ledger.records() if isinstance(r.event, ItemListed)]
    items_from = {item: at for come in coming.values() for item, at in come.items.items()}
    assert listed and all(e.at >= items_from[e.listing.item_id] for e in listed if e.listing.item_id in items_from)


def test_by_default_everything_is_up_on_the_first_morning(tmp_path: Path) -> None:
    built_in = {t: {"backend": "offline", "profile": t} for t in ("frontier", "small")}  # list 2-3 items a turn
    summary, _ = week(tmp_path, {"arrival_days": None, "item_arrival_days": None}, "default", built_in)
    market = summary["markets"][0]
    deals, listings = market["by_day"]["deals"], market["by_day"]["listings"]
    assert listings[0] == market["listings"] and listings[1:] == [0, 0, 0, 0]
    assert deals[0] > 0.8 * market["deals"]  # the old week: it clears on its first day


@pytest.mark.parametrize(("change", "message"), [
    ({"arrival_days": {"min": -1, "max": 1}}, "timing.arrival_days: days are counted from the opening"),
    ({"item_arrival_days": {"min": 2, "max": 1}}, "timing.item_arrival_days: min must not exceed max"),
    ({"arrival_days": {"min": 0, "max": 400}}, "timing.arrival_days: at most a year of days"),
])
def test_bad_arrivals_are_refused_naming_the_field(change: dict[str, Any], message: str) -> None:
    data = yaml.safe_load((SCENARIOS / "deal.yaml").read_text())
    data["timing"] = {**data["timing"], **change}
    with pytest.raises(ScenarioError, match=message):
        validate_scenario(data, "deal.yaml")


def test_the_daily_table_the_report_and_the_terminal_line_agree_with_the_summary(tmp_path: Path) -> None:
    from analysis.export import run_tables
    from analysis.load import load_runs
    from analysis.report import analyse, render
    from running.run import week_line
    from running.summary import RunSummary

    summary, out = week(tmp_path, {"item_arrival_days": {"min": 0, "max": 3}}, "days")
    market = summary["markets"][0]
    daily = run_tables(out, "days")["daily"]
    assert daily["day"].to_list() == [1, 2, 3, 4, 5]
    assert daily["deals"].to_list() == market["by_day"]["deals"]
    assert daily["new_listings"].to_list() == market["by_day"]["listings"]
    assert daily["volume"].to_list() == market["by_day"]["volume_cents"]
    a = analyse(load_runs([out]))
    assert a.daily is not None and a.daily["deals"].to_list() == market["by_day"]["deals"]
    assert "The week over time" in render(a)
    deals = " ".join(map(str, market["by_day"]["deals"]))
    assert week_line(RunSummary.model_validate(summary)) == f"deals per day (day 1 first): A {deals}"
