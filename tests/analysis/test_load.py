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
from market.ledger import Ledger


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


@pytest.mark.slow
def test_cli_bad_input_exits_2_without_traceback(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "analysis.report", str(tmp_path)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2
    assert "not a run folder" in result.stderr
    assert "Traceback" not in result.stderr
