"""Loading run folders: tables match the ledger's own summary; bad input gives clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from analysis import AnalysisError, load_run, load_runs
from analysis.fairness import ratings
from market.ledger import Ledger, LedgerError
from market.scenario import ScenarioError


def test_tables_agree_with_the_runs_summary(smoke_run: Path) -> None:
    data = load_run(smoke_run)
    summary = json.loads((smoke_run / "summary.json").read_text())
    market = summary["markets"][0]
    assert data.deals.height == market["deals"]
    assert data.deals["price"].sum() == market["volume_cents"]
    assert data.listings.height == market["listings"]
    assert data.offers.height == market["offers"]
    assert data.participants.height == market["participants"]
    for tier, figures in market["tiers"].items():
        assert data.participants.filter(pl.col("tier") == tier).height == figures["participants"]
        assert data.deals.filter(pl.col("seller_tier") == tier).height == figures["deals_as_seller"]
    for column in ("price", "value", "buyer_value", "seller_reserve"):
        assert data.deals.schema[column] == pl.Int64
    last = data.hourly.filter(pl.col("hour") == pl.col("hour").max())
    assert last["deals"].item() == market["deals"]
    assert last["volume"].item() == market["volume_cents"]
    money = sum(last[f"money_{t}"].item() for t in data.tiers)
    assert money == data.participants["budget"].sum()  # money is conserved in the series too
    for tier, figures in market["tiers"].items():
        assert last[f"money_{tier}"].item() == figures["money_cents"]


def test_load_runs_stacks_runs_with_a_run_column(smoke_run: Path, pairs_run: Path) -> None:
    data = load_runs([smoke_run, pairs_run])
    # both folders are called "run": they are told apart by their parent folder
    assert set(data.deals["run"].unique()) == {f"{smoke_run.parent.name}/run", f"{pairs_run.parent.name}/run"}
    assert data.deals.height == load_run(smoke_run).deals.height + load_run(pairs_run).deals.height
    assert len(data.runs) == 2
    # stored ratings are matched to the same run ids
    assert ratings(data).height == 2 * data.deals.height
    with pytest.raises(AnalysisError, match="given twice"):
        load_runs([smoke_run, smoke_run])


def test_not_a_folder_or_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(AnalysisError, match="no such folder"):
        load_run(tmp_path / "missing")
    with pytest.raises(AnalysisError, match="not a run folder"):
        load_run(tmp_path)
    with pytest.raises(AnalysisError, match="holds no run folders"):
        load_runs([tmp_path])


def test_run_in_progress(smoke_run: Path, copy_run) -> None:
    run = copy_run(smoke_run)
    with Ledger(run) as ledger:
        ledger.set_status("state", "running")
    with pytest.raises(AnalysisError, match=r"in progress.*--resume"):
        load_run(run)


def test_truncated_ledger(smoke_run: Path, copy_run) -> None:
    run = copy_run(smoke_run)
    ledger = run / "ledger.sqlite"
    for extra in ("-wal", "-shm"):
        Path(f"{ledger}{extra}").unlink(missing_ok=True)
    ledger.write_bytes(ledger.read_bytes()[:3000])
    with pytest.raises(AnalysisError, match=r"ledger cannot be read|truncated"):
        load_run(run)


@pytest.mark.parametrize(("text", "problem"), [
    ("seed: " + "9" * 5_000 + "\n", "scenario.yaml: line 1, column 7: an integer of 5,000 digits"),
    ("- a list\n", "scenario.yaml: expected a mapping of settings, got list"),
    ("name: [\n", "scenario.yaml: line 2, column 1: not valid YAML"),
])
def test_a_damaged_scenario_is_named_by_every_reader_of_the_run(smoke_run: Path, copy_run, tmp_path: Path,
                                                                 text: str, problem: str) -> None:
    """The loader, the export, the live page's replay, resume and the Slack watcher read a run's scenario.yaml
    through RunFolder.read_scenario (a 5,000-digit integer was a traceback in the export)."""
    from typer.testing import CliRunner

    from analysis.export import app as export_app
    from running import runner
    from running.runfolder import RunFolder, RunFolderError
    from slackbot.watch import show_tiers_of
    from watch.replay import LedgerWatch

    run = copy_run(smoke_run)
    (run / "scenario.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(AnalysisError, match=problem):
        load_run(run)
    exported = CliRunner().invoke(export_app, [str(run), "--out", str(tmp_path / "export")])
    assert exported.exit_code == 2 and problem in " ".join(exported.output.split()), exported.output
    with pytest.raises(LedgerError, match=problem):
        LedgerWatch(RunFolder.open(run))
    for read in (lambda: runner.resume(RunFolder.open(run)), lambda: show_tiers_of(run)):
        with pytest.raises((RunFolderError, ScenarioError), match=problem):
            read()


def test_an_unreadable_summary_of_a_complete_run_is_named_on_resume(smoke_run: Path, copy_run) -> None:
    from running import runner
    from running.runfolder import RunFolder, RunFolderError

    run = copy_run(smoke_run)
    (run / "summary.json").write_text("{bad", encoding="utf-8")
    with pytest.raises(RunFolderError, match=r"summary.json: not valid JSON .*; the run is complete"):
        runner.resume(RunFolder.open(run))


@pytest.mark.slow
def test_cli_bad_input_exits_2_without_traceback(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "analysis.report", str(tmp_path)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2
    assert "not a run folder" in result.stderr
    assert "Traceback" not in result.stderr
