"""Whole runs: determinism, invariants, the run folder, the command line."""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from market.events import ActionRejected, RejectionCode
from market.ledger import Ledger
from market.state import check_invariants
from running import runner
from running.runfolder import RunFolder
from tests.conftest import ROOT, export, run_cli


def run_once(scenario: Path, out: Path, **overrides) -> runner.RunResult:  # type: ignore[no-untyped-def]
    return runner.start(runner.plan(scenario, **overrides), RunFolder.create(out.parent, "x", exact=out))


def test_same_seed_same_bytes_other_seed_other_bytes(smoke: Path, tmp_path: Path) -> None:
    run_once(smoke, tmp_path / "a")
    run_once(smoke, tmp_path / "b")
    run_once(smoke, tmp_path / "c", seed=8)
    assert export(tmp_path / "a") == export(tmp_path / "b")
    assert export(tmp_path / "a") != export(tmp_path / "c")


def test_a_run_folder_holds_everything_and_invariants_hold(smoke: Path, tmp_path: Path) -> None:
    result = run_once(smoke, tmp_path / "run")
    folder = result.folder
    resolved = yaml.safe_load(folder.scenario.read_text())
    assert resolved["seed"] == 7 and resolved["catalog"] == "catalog.csv"
    summary = json.loads(folder.summary.read_text())
    assert summary["complete"] and summary["markets"][0]["deals"] > 0
    with Ledger(folder.ledger) as ledger:
        assert ledger.status("state") == "complete"
        state = ledger.replay("A")
        assert check_invariants(state) == []
        assert len(state.deals) == summary["markets"][0]["deals"]
        kinds = {r.event.type for r in ledger.records()}
    assert {"market_opened", "participant_joined", "item_listed", "offer_made", "deal_closed"} <= kinds
    # no offline agent ever tries to break its principal's limits
    with Ledger(folder.ledger) as ledger:
        codes = [r.event.code for r in ledger.records() if isinstance(r.event, ActionRejected)]
    assert not [c for c in codes if c.mandate or c is RejectionCode.INSUFFICIENT_FUNDS]


def test_policies_decide_as_a_batch_before_any_action_is_applied(smoke: Path, tmp_path: Path) -> None:
    from agents.offline import PROFILES, OfflinePolicy

    seen: list[tuple[int, int]] = []

    class Recording(OfflinePolicy):
        def decide_batch(self, observations):  # type: ignore[no-untyped-def]
            for obs in observations:
                seen.append((obs.at, len(state_ref[0].deals) if state_ref else 0))
            return [self.decide(o) for o in observations]

    prepared = runner.plan(smoke)
    policy = Recording(PROFILES["frontier"], seed=7)
    prepared.policies = {tier: policy for tier in prepared.policies}
    state_ref: list = []  # type: ignore[type-arg]
    folder = RunFolder.create(tmp_path, "x", exact=tmp_path / "run")
    result = runner.start(prepared, folder, on_batch=lambda model, at: state_ref[:] or state_ref.append(
        model.markets[0].state))
    batches: dict[int, set[int]] = {}
    for at, deals in seen:
        batches.setdefault(at, set()).add(deals)
    assert all(len(counts) == 1 for counts in batches.values()), "every observation of a batch sees the same state"
    assert result.complete and max(len(v) for v in [batches]) > 1


def test_cli_prints_table_and_folder(smoke: Path, tmp_path: Path) -> None:
    result = run_cli(smoke, "--out", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    assert f"run folder: {tmp_path / 'run'}" in result.stdout
    assert "person" in result.stdout and "p/v" in result.stdout and "frontier" in result.stdout
    assert (tmp_path / "run" / "summary.json").is_file()


def test_cli_markets_and_days_overrides(deal: Path, tmp_path: Path) -> None:
    result = run_cli(deal, "--out", tmp_path / "run", "--markets", "B", "--days", "1", "--quiet")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert [m["market"] for m in summary["markets"]] == ["B"]
    assert summary["simulated_seconds"] <= 86_400
    bad = run_cli(deal, "--out", tmp_path / "run2", "--markets", "Z", "--quiet")
    assert bad.returncode == 2 and "unknown market Z" in bad.stderr


def test_cli_needs_a_scenario_or_a_run(tmp_path: Path) -> None:
    result = run_cli("--quiet")
    assert result.returncode == 2 and "--resume" in result.stderr
    result = run_cli("--resume", tmp_path, "--quiet")
    assert result.returncode == 2 and "not a run folder" in result.stderr


@pytest.mark.slow
def test_ctrl_c_exits_130_with_a_consistent_ledger_and_the_resume_command(deal: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = subprocess.Popen(
        # a long week, so the interrupt surely lands mid-run
        [sys.executable, "-m", "market.run", str(deal), "--out", str(out), "--days", "30", "--quiet"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    _wait_for_clock(out, proc)  # the first batch is written: the run's Ctrl-C handler is in place
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr
    assert f"interrupted; continue with: python -m market.run --resume {out}" in stderr
    assert "Traceback" not in stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "stopped" and summary["stop_cause"] == "interrupted"
    with Ledger(out) as ledger:
        assert ledger.status("state") == "stopped" and ledger.last_seq == summary["events"]
        for market in ledger.markets():
            assert check_invariants(ledger.replay(market)) == []


def _wait_for_clock(out: Path, proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
    """Until the run has written an event after its opening ones (no race: the marker is in the ledger)."""
    _wait(out, proc, "SELECT 1 FROM events WHERE at > 0 LIMIT 1")


def _wait_for_events(out: Path, count: int, proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
    """Until the run's ledger holds at least ``count`` events."""
    _wait(out, proc, f"SELECT 1 FROM events WHERE seq >= {int(count)} LIMIT 1")


def _wait(out: Path, proc: subprocess.Popen, query: str) -> None:  # type: ignore[type-arg]
    deadline = time.monotonic() + 600  # generous: a loaded machine is slow, never wrong
    ledger = out / "ledger.sqlite"
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before it could be interrupted"
        if ledger.is_file():  # created whole (moved into place), so a reader never meets half a database
            with contextlib.closing(sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=30)) as db:
                if db.execute(query).fetchone():
                    return
        time.sleep(0.02)
    raise AssertionError("the run never wrote enough events")
