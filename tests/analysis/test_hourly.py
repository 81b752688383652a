"""One set of hourly reporters (market.hourly): the engine's DataCollector while it runs and the tables over the
ledger afterwards give the same rows."""

from __future__ import annotations

from pathlib import Path

import msgspec
import polars as pl

from analysis.tables import hourly_schema, hourly_series
from market import hourly
from market.clock import HOUR
from market.ledger import Ledger
from running import runner
from running.runfolder import RunFolder


def test_live_and_ledger_rows_are_the_same(smoke: Path, tmp_path: Path) -> None:
    result = runner.start(runner.plan(smoke), RunFolder.create(tmp_path, "smoke", exact=tmp_path / "run"),
                          after_run=False)
    assert result.complete and result.model is not None
    tiers = list(result.model.scenario.tiers)
    live = result.model.datacollector.tables["hourly"]
    assert list(live) == hourly.columns(tiers)
    live_rows = pl.DataFrame(live, schema={c: t for c, t in hourly_schema(tiers).items() if c != "run"})
    with Ledger(result.folder.ledger) as ledger:
        records = [(r.market, r.event) for r in ledger.records()]
    offline = hourly_series(records, tiers, result.model.scenario.duration, "run")
    assert offline.height == result.model.scenario.days * 24 * len(result.model.markets)  # every hour, the last too
    assert offline["deals"].max() == len(result.model.markets[0].state.deals) > 0  # the smoke week closes deals
    assert offline.drop("run").equals(live_rows.sort(["market", "hour"], maintain_order=True))


def test_an_event_on_the_hour_falls_in_the_next_hour(smoke: Path, tmp_path: Path) -> None:
    result = runner.start(runner.plan(smoke), RunFolder.create(tmp_path, "smoke", exact=tmp_path / "run"),
                          after_run=False)
    with Ledger(result.folder.ledger) as ledger:
        records = [(r.market, r.event) for r in ledger.records()]
    deal = next(e for _, e in records if e.type == "deal_closed")
    hour = deal.at // HOUR + 1  # the deal's hour: rows up to the one before it do not count it
    rows = hourly.rows_from_events([(m, e) for m, e in records if e.at <= deal.at], ["frontier", "small"], hour * HOUR)
    before = [r for r in rows if r["hour"] == hour - 1]
    after = [r for r in rows if r["hour"] == hour]
    assert before[0]["deals"] < after[0]["deals"]
    moved = [(m, msgspec.structs.replace(e, at=hour * HOUR)) if e is deal else (m, e)
             for m, e in records if e.at <= deal.at]
    late = hourly.rows_from_events(moved, ["frontier", "small"], (hour + 1) * HOUR)
    assert [r["deals"] for r in late if r["hour"] == hour] == [before[0]["deals"]]  # at h*HOUR: hour h+1's
    assert [r["deals"] for r in late if r["hour"] == hour + 1] == [after[0]["deals"]]
