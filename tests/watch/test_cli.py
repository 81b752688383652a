"""The command lines: bad input exits 2 with a clear message; ``--watch`` leaves the ledger as it was."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from market.ledger import Ledger
from running import run as run_cli
from running.runfolder import RunFolder
from watch import cli as watch_cli
from watch.controls import ControlError, Controls, parse_speed


def _control(url: str, action: str, value: str | None = None) -> None:
    """Send one control as the page sends it."""
    body = json.dumps({"action": action, "value": value}).encode()
    urllib.request.urlopen(urllib.request.Request(url + "control", body, {"Content-Type": "application/json"},
                                                  method="POST"))


def _interrupt(proc: subprocess.Popen[str]) -> None:
    """Ctrl-C the command; it exits 0."""
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0


def _assert_same_ledger(out: Path, plain: RunFolder) -> None:
    """The watched run's ledger at ``out`` is the unwatched run's, line for line."""
    with Ledger(out) as watched, Ledger(plain.ledger) as unwatched:
        assert list(watched.export_lines()) == list(unwatched.export_lines()), "watching changed the run"


def test_watch_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    result = CliRunner().invoke(watch_cli.app, [str(tmp_path)])
    assert result.exit_code == 2
    assert "not a run folder (missing scenario.yaml, ledger.sqlite)" in result.output


def test_watch_on_a_port_in_use(smoke_run: RunFolder, busy_port: int) -> None:
    result = CliRunner().invoke(watch_cli.app, [str(smoke_run.path), "--port", str(busy_port)])
    assert result.exit_code == 2
    assert f"port {busy_port} on 127.0.0.1 is in use" in result.output


@pytest.mark.parametrize("port", ["99999", "-1"])
def test_a_port_out_of_range_is_named(smoke_run: RunFolder, two_markets: Path, tmp_path: Path, port: str) -> None:
    """Once a traceback from socketserver's bind (OverflowError: port must be 0-65535)."""
    out = tmp_path / "never"
    watched = CliRunner().invoke(watch_cli.app, [str(smoke_run.path), "--port", port])
    run = CliRunner().invoke(run_cli.app, [str(two_markets), "--out", str(out), "--watch", "--port", port, "-q"])
    for result in (watched, run):
        assert result.exit_code == 2 and "Invalid value for '--port'" in result.output, result.output
    assert not out.exists()


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
    proc = subprocess.Popen([sys.executable, "-m", "market.run", str(two_markets), "--out", str(out), "--watch",
                             "-q", "--no-report"], stdout=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().split(" at ")[1].strip()  # type: ignore[union-attr]
        for action in ("step", "step", "resume"):
            _control(url, action)
        lines = [proc.stdout.readline() for _ in range(2)]  # type: ignore[union-attr]
        assert lines[1].startswith("the run is over")
        state = json.loads(urllib.request.urlopen(url + "state").read())
        assert state["status"] == "complete"
        _interrupt(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    _assert_same_ledger(out, smoke_run)


def test_speed_names_and_a_bad_speed(smoke_run: RunFolder) -> None:
    assert parse_speed("1 h/s") == parse_speed("1h/s") == 3_600.0
    assert parse_speed("MAX") == 0.0
    assert parse_speed("600") == parse_speed("10 min/s") == 600.0
    with pytest.raises(ControlError, match=r"or in simulated seconds per second: 0, 86400, 3600, 600, 60\)"):
        parse_speed("601")
    result = CliRunner().invoke(watch_cli.app, [str(smoke_run.path), "--speed", "warp"])
    assert result.exit_code == 2
    assert "--speed: unknown speed 'warp'; choose one of max, 1 day/s, 1 h/s" in result.output


@pytest.mark.slow
@pytest.mark.parametrize("module", ["watch", "market.watch"])
def test_module_forms_of_the_watch_command(module: str, smoke_run: RunFolder, tmp_path: Path) -> None:
    """``python -m watch`` and the old ``python -m market.watch`` are the same command line; Ctrl-C stops it
    with 0 (an untimed wait would hold it: polars' SIGINT handler restarts the wait)."""
    helped = subprocess.run([sys.executable, "-m", module, "-h"], capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0
    assert f"Usage: python -m {module} [OPTIONS]" in helped.stdout and "--paused" in helped.stdout
    bad = subprocess.run([sys.executable, "-m", module, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert "not a run folder" in bad.stderr
    proc = subprocess.Popen([sys.executable, "-m", module, str(smoke_run.path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().startswith(f"watching {smoke_run.path} at http://127.0.0.1:")  # type: ignore[union-attr]
        _interrupt(proc)
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.slow
def test_run_with_watch_starts_paused_and_slowed(two_markets: Path, smoke_run: RunFolder, tmp_path: Path) -> None:
    """``--watch --paused --speed '10 min/s'``: the run holds after its first batch until Resume, at that speed;
    its ledger is the same as an unwatched run's."""
    out = tmp_path / "held"
    proc = subprocess.Popen([sys.executable, "-m", "market.run", str(two_markets), "--out", str(out), "--watch",
                             "--paused", "--speed", "10 min/s", "-q", "--no-report"], stdout=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().split(" at ")[1].strip()  # type: ignore[union-attr]
        with urllib.request.urlopen(url + "events", timeout=120) as events:  # the first snapshot: the first batch
            line = next(raw for raw in events if raw.startswith(b"data: "))
        first = json.loads(line[len(b"data: "):])
        assert (first["status"], first["paused"], first["speed"]) == ("running", True, "10 min/s")
        held = json.loads(urllib.request.urlopen(url + "state").read())
        assert (held["clock"], held["paused"]) == (first["clock"], True), "a paused run waits for the page"
        with Ledger(out) as ledger:
            assert ledger.status("state") != "complete"
        _control(url, "speed", "max")
        _control(url, "resume")
        lines = [proc.stdout.readline() for _ in range(2)]  # type: ignore[union-attr]
        assert lines[1].startswith("the run is over")
        _interrupt(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    _assert_same_ledger(out, smoke_run)


def test_ctrl_c_stops_a_paused_watched_run_at_once(two_markets: Path, tmp_path: Path) -> None:
    """One Ctrl-C on a run held by the page stops it cleanly: the hold is released (it waited for Step or
    Resume before, and only a second Ctrl-C, which cuts the run short, got it out)."""
    out = tmp_path / "held"
    proc = subprocess.Popen([sys.executable, "-m", "market.run", str(two_markets), "--out", str(out), "--watch",
                             "--paused", "-q", "--no-report"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        url = proc.stdout.readline().split(" at ")[1].strip()  # type: ignore[union-attr]
        with urllib.request.urlopen(url + "events", timeout=120) as events:  # held after the first batch
            next(raw for raw in events if raw.startswith(b"data: "))
        proc.send_signal(signal.SIGINT)
        said = "".join(proc.communicate(timeout=60))
    finally:
        if proc.poll() is None:
            proc.kill()
    assert f"interrupted; continue with: python -m market.run --resume {out}" in said and "Traceback" not in said
    with Ledger(out) as ledger:
        assert ledger.status("state") == "stopped"
