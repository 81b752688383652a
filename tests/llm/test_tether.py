"""The local server's process dies with the run: the tether, with a stand-in server (``http.server``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agents.llm import tether
from agents.llm.local_server import stop

STAND_IN = ("http.server", ["--bind", "127.0.0.1", "0"])  # a long-running python server, like llama_cpp.server
DEADLINE = 30.0  # seconds: a deadline for polling, not a wait


def _gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (reaped, or a zombie its new parent has not reaped yet)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, IndexError):
        return not stat.parent.exists()


def _wait_gone(pid: int) -> None:
    deadline = time.monotonic() + DEADLINE
    while not _gone(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            pytest.fail(f"the tethered child {pid} outlived its parent by {DEADLINE:g} s")
        time.sleep(0.05)


@pytest.mark.slow
def test_closing_the_tether_ends_the_child() -> None:
    process, line = tether.spawn(*STAND_IN, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert process.poll() is None
        line.close()  # what the kernel does when this process exits
        assert process.wait(timeout=DEADLINE) == tether.EXIT_CODE
    finally:
        stop(process, line)


@pytest.mark.slow
def test_stop_terminates_the_child_and_closes_the_tether() -> None:
    process, line = tether.spawn(*STAND_IN, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stop(process, line)
    assert process.returncode == -signal.SIGTERM and line.closed
    stop(process, line)  # idempotent


PARENT = """
import subprocess, sys, time
from agents.llm import tether
process, line = tether.spawn({module!r}, {args!r}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(process.pid, flush=True)
time.sleep(600)
"""


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_the_child_dies_with_its_parent(sig: signal.Signals) -> None:
    module, args = STAND_IN
    parent = subprocess.Popen([sys.executable, "-c", PARENT.format(module=module, args=args)],
                              stdout=subprocess.PIPE, text=True)
    try:
        line = parent.stdout.readline() if parent.stdout else ""
        assert line.strip().isdigit(), f"the parent did not start its child (exit code {parent.poll()})"
        child = int(line)
        assert not _gone(child)
        parent.send_signal(sig)  # no clean-up runs in the parent (SIGTERM's default action, like SIGKILL)
        assert parent.wait(timeout=DEADLINE) == -sig
        _wait_gone(child)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
