"""The command lines: bad input exits 2 with a clear message; ``--watch`` leaves the ledger as it was."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from market import run as run_cli
from market.ledger import Ledger
from market.runfolder import RunFolder
from market.watch import cli as watch_cli
from market.watch.controls import ControlError, Controls


def test_watch_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    result = CliRunner().invoke(watch_cli.app, [str(tmp_path)])
    assert result.exit_code == 2
    assert "not a run folder (missing scenario.yaml, ledger.sqlite)" in result.output


def test_watch_on_a_port_in_use(smoke_run: RunFolder, busy_port: int) -> None:
    result = CliRunner().invoke(watch_cli.app, [str(smoke_run.path), "--port", str(busy_port)])
    assert result.exit_code == 2
    assert f"port {busy_port} on 127.0.0.1 is in use" in result.output


def test_run_with_watch_on_a_port_in_use_writes_nothing(two_markets: Path, tmp_path: Path, busy_port: int) -> None:
    out = tmp_path / "never"
    result = CliRunner().invoke(run_cli.app, [str(two_markets), "--out", str(out), "--watch", "--port",
                                              str(busy_port), "-q"])
    assert result.exit_code == 2
    assert "is in use" in result.output
    assert not out.exists()


def test_controls_refuse_what_they_cannot_do() -> None:
    controls = Controls(market="A", markets=("A", "B"))
    with pytest.raises(ControlError, match="unknown speed"):
        controls.apply({"action": "speed", "value": "warp"})
    with pytest.raises(ControlError, match="unknown market 'Z'; this run has A, B"):
        controls.apply({"action": "market", "value": "Z"})
    controls.apply({"action": "step"})
    assert controls.paused and controls.steps == 1


@pytest.mark.slow
def test_run_with_watch_gives_the_same_ledger(two_markets: Path, smoke_run: RunFolder, tmp_path: Path) -> None:
    """``python -m market.run --watch`` with step, step, resume sent as the page sends them (usually before the
    first batch, so the run is held; it is fast, so not guaranteed), then Ctrl-C: exit 0, the same ledger."""
    out = tmp_path / "watched"
    env = {**os.environ, "MARKET_AFTER_RUN_REPORT": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "market.run", str(two_markets), "--out", str(out), "--watch",
                             "-q"], stdout=subprocess.PIPE, text=True, env=env)
    try:
        url = proc.stdout.readline().split(" at ")[1].strip()  # type: ignore[union-attr]

        def control(action: str, value: str | None = None) -> None:
            body = json.dumps({"action": action, "value": value}).encode()
            urllib.request.urlopen(urllib.request.Request(url + "control", body, method="POST"))

        control("step")
        control("step")
        control("resume")
        lines = [proc.stdout.readline() for _ in range(2)]  # type: ignore[union-attr]
        assert lines[1].startswith("the run is over")
        state = json.loads(urllib.request.urlopen(url + "state").read())
        assert state["status"] == "complete"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    with Ledger(out) as watched, Ledger(smoke_run.ledger) as plain:
        assert list(watched.export_lines()) == list(plain.export_lines()), "watching changed the run"
