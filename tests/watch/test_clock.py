"""The page's clock: simulated time as a day and an hour, and a finished week at its real end."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import yaml

from market.clock import DAY, HOUR
from market.scenario import WorkingHours
from running.runfolder import RunFolder
from watch.controls import MAX_SPEED, Controls
from watch.replay import LedgerWatch
from watch.snapshot import clock_label


def test_clock_label_counts_days_from_one() -> None:
    assert clock_label(0) == "day 1 · 00:00"
    assert clock_label(DAY + 14 * HOUR + 5 * 60 + 59) == "day 2 · 14:05"
    assert clock_label(4 * DAY + 16 * HOUR, end=5 * DAY, closes=17) == "day 5 · 16:00"


def test_a_finished_week_shows_its_last_day_at_closing_not_the_midnight_after() -> None:
    assert clock_label(5 * DAY) == "day 6 · 00:00"  # a bare time, no week known
    assert clock_label(5 * DAY, end=5 * DAY, closes=17) == "day 5 · 17:00 · week over"
    assert clock_label(5 * DAY + 60, end=5 * DAY, closes=17) == "day 5 · 17:00 · week over"
    assert clock_label(DAY, end=DAY, closes=24) == "day 1 · 24:00 · week over"
    assert clock_label(5 * DAY - 1, end=5 * DAY, closes=17) == "day 5 · 23:59"  # still the week


def _replayed_to_the_end(folder: RunFolder) -> dict[str, object]:
    """The last snapshot of ``folder`` replayed at full speed (120 s at most)."""
    controls = Controls(market="", speed=MAX_SPEED)
    watch = LedgerWatch(folder, controls)
    watch.start()
    try:
        deadline, version, snapshot = time.monotonic() + 120, 0, {}
        while snapshot.get("status") != "complete":
            assert time.monotonic() < deadline, "the replay did not reach the end of the run"
            got = watch.hub.wait(version, timeout=5)
            if got is not None:
                version, snapshot = got[0], json.loads(got[1])
    finally:
        watch.stop()
    return snapshot


def test_a_replayed_finished_run_ends_on_its_closing_hour(smoke_run: RunFolder) -> None:
    """smoke.yaml is one day, working hours 9 to 17: replayed to its end, the page says so."""
    snapshot = _replayed_to_the_end(smoke_run)
    assert snapshot["clock"] == DAY
    assert snapshot["clock_label"] == "day 1 · 17:00 · week over"


def test_a_scenario_without_working_hours_ends_at_the_default_closing_hour(smoke_run: RunFolder,
                                                                           tmp_path: Path) -> None:
    """A run whose scenario.yaml leaves working_hours out closes its days at WorkingHours' default, 18:00."""
    copy = RunFolder(Path(shutil.copytree(smoke_run.path, tmp_path / "run")))
    scenario = yaml.safe_load(copy.scenario.read_text(encoding="utf-8"))
    del scenario["working_hours"]
    copy.scenario.write_text(yaml.safe_dump(scenario), encoding="utf-8")
    assert WorkingHours().end == 18
    snapshot = _replayed_to_the_end(copy)
    assert snapshot["clock"] == DAY
    assert snapshot["clock_label"] == "day 1 · 18:00 · week over"
