"""summary.json has one schema (RunSummary), one writer and one reader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from running import runner
from running.runfolder import RunFolder, RunFolderError
from running.summary import RunSummary

FIELDS = ["scenario", "seed", "status", "complete", "stopped", "stop_cause", "simulated_seconds", "events",
          "markets", "failures"]


def test_the_written_summary_reads_back_as_itself(smoke: Path, tmp_path: Path) -> None:
    result = runner.start(runner.plan(smoke), RunFolder.create(tmp_path, "x", exact=tmp_path / "run"),
                          after_run=False)
    text = result.folder.summary.read_text(encoding="utf-8")
    assert list(json.loads(text)) == FIELDS  # no section: an offline run's policies add none
    again = result.folder.read_summary()
    assert again == result.summary and again is not None
    assert json.dumps(again.as_json(), indent=2) + "\n" == text  # byte for byte, key order included
    assert again.status == "complete" and again.markets[0].deals == sum(again.markets[0].by_day.deals) > 0
    assert again.failures.tiers["frontier"].failed == 0


def test_sections_come_after_the_fields_in_the_order_added(smoke: Path, tmp_path: Path) -> None:
    result = runner.start(runner.plan(smoke), RunFolder.create(tmp_path, "x", exact=tmp_path / "run"),
                          after_run=False)
    assert result.summary is not None
    added = result.summary.with_sections({"llm": {"total": {"calls": 3}}, "costly": {"turns": 2}})
    added = added.with_sections({"survey": {"asked": 1}})
    added.write(result.folder.summary)
    read = result.folder.read_summary()
    assert read is not None and read.llm == {"total": {"calls": 3}} and read.survey == {"asked": 1}
    assert read.sections() == {"llm": {"total": {"calls": 3}}, "survey": {"asked": 1}, "costly": {"turns": 2}}
    assert list(json.loads(result.folder.summary.read_text())) == [*FIELDS, "llm", "survey", "costly"]


def test_an_unreadable_summary_is_named_with_its_field(tmp_path: Path, smoke: Path) -> None:
    result = runner.start(runner.plan(smoke), RunFolder.create(tmp_path, "x", exact=tmp_path / "run"),
                          after_run=False)
    folder = result.folder
    data = json.loads(folder.summary.read_text())
    data["markets"][0]["deals"] = "many"
    folder.summary.write_text(json.dumps(data))
    with pytest.raises(RunFolderError, match=r"summary.json: markets\.0\.deals: .*integer"):
        folder.read_summary()
    folder.summary.write_text("[]")
    with pytest.raises(RunFolderError, match=r"summary\.json: not a JSON object"):
        folder.read_summary()
    folder.summary.unlink()
    assert folder.read_summary() is None


def test_a_status_outside_the_three_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="status"):
        RunSummary.model_validate({"scenario": "s", "seed": 1, "status": "done", "complete": True, "stopped": None,
                                   "stop_cause": None, "simulated_seconds": 1, "events": 1, "markets": [],
                                   "failures": {"max_share": 0.5, "window": 10, "tiers": {}}})
