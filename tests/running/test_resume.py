"""A run killed at a random moment and resumed ends byte-identical to one never killed."""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from market.ledger import Ledger
from market.state import check_invariants
from tests.conftest import ROOT, export, run_cli
from tests.running.test_run import _wait_for_events

ARGS = ("--markets", "B,C", "--days", "3", "--quiet")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("whole") / "run"
    result = run_cli(ROOT / "scenarios" / "deal.yaml", "--out", out, *ARGS)
    assert result.returncode == 0, result.stderr
    return export(out)


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", [1, 2, 3])
def test_sigkill_then_resume_is_byte_identical(uninterrupted: str, tmp_path: Path, kill_at: int) -> None:
    total = uninterrupted.count("\n")
    threshold = random.Random(kill_at).randint(total * (kill_at - 1) // 3 + 150, total * kill_at // 3 - 150)
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "market.run", str(ROOT / "scenarios" / "deal.yaml"), "--out", str(out), *ARGS],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    _wait_for_events(out, threshold, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    with Ledger(out) as ledger:
        written = ledger.last_seq
        assert ledger.status("state") == "running"
        for market in ledger.markets():
            assert check_invariants(ledger.replay(market)) == []
    assert 0 < written < total, "killed mid-run"
    assert uninterrupted.startswith(export(out)), "what was written before the kill is a prefix of the full run"

    resumed = run_cli("--resume", out, "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert export(out) == uninterrupted
    again = run_cli("--resume", out, "--quiet")
    assert again.returncode == 0 and export(out) == uninterrupted, "resuming a finished run changes nothing"


def test_a_ledger_that_disagrees_is_refused(smoke: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert run_cli(smoke, "--out", out, "--days", "1", "--quiet").returncode == 0
    with Ledger(out) as ledger:
        ledger.set_status("state", "running")
        ledger._db.execute("UPDATE events SET body = replace(body, '\"ask\":', '\"ask\":1') WHERE seq = "
                           "(SELECT MIN(seq) FROM events WHERE type = 'item_listed')")
    result = run_cli("--resume", out, "--quiet")
    assert result.returncode == 2
    assert "diverged from its ledger at event" in result.stderr


@pytest.mark.slow
def test_a_week_on_version_1_streams_resumes_byte_identical(uninterrupted: str, tmp_path: Path) -> None:
    """The same week (deal.yaml declares version 2) drawing from version 1's Mersenne Twisters: another ledger
    than version 2's, and its own (killed and resumed, it ends as it would have)."""
    scenario = tmp_path / "deal.yaml"
    text, declared = re.subn(r"(?m)^streams: 2$", "streams: 1", (ROOT / "scenarios" / "deal.yaml").read_text())
    assert declared == 1
    scenario.write_text(text)
    shutil.copyfile(ROOT / "scenarios" / "catalog.csv", tmp_path / "catalog.csv")
    shutil.copytree(ROOT / "scenarios" / "targets", tmp_path / "targets")
    whole = tmp_path / "whole"
    assert run_cli(scenario, "--out", whole, *ARGS).returncode == 0
    version_1 = export(whole)
    assert version_1 != uninterrupted and version_1.count("deal_closed") > 0
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "market.run", str(scenario), "--out", str(out), *ARGS],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _wait_for_events(out, version_1.count("\n") // 2, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert version_1.startswith(export(out))
    resumed = run_cli("--resume", out, "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert export(out) == version_1
