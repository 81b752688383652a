"""Shared fixtures: scenario paths, a helper to run the command line, and the browser tests' marker."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from analysis.notebook import find_browser

# Ray (tests/analysis/test_sweep.py) gives its local node 30 s to register by default; on a
# 2-core CI machine that is also running the suite it was seen to miss that. Ray reads this
# when it is first imported, so it is set before any test imports it.
os.environ.setdefault("RAY_raylet_start_wait_time_s", "300")

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"

BROWSER = find_browser()
"""The Chrome or Chromium on this machine (the one the notebook's pictures use), or None."""
NO_BROWSER = "needs Chrome or Chromium: apt-get install chromium (.ci/run installs it when root)"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
needs_browser = pytest.mark.skipif(BROWSER is None, reason=NO_BROWSER)
"""Marks a test that drives a real browser: skipped, with the reason, on a machine without one."""


@pytest.fixture(scope="session")
def browser_path() -> str:
    """The browser's executable; the test is skipped (saying what to install) where there is none."""
    if BROWSER is None:
        pytest.skip(NO_BROWSER)
    return BROWSER


@pytest.fixture
def browser(browser_path: str) -> Iterator[object]:
    """This machine's Chromium, headless, driven by Playwright, one per test (browser downloads are not needed).

    Per test, not per process: while Playwright's sync API is open it leaves an event loop running in the main
    thread, and every later test in that process that calls ``asyncio.run`` (the model transports do) would fail.
    A test takes this fixture once; Playwright refuses a second sync API opened inside the first."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=browser_path, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def smoke() -> Path:
    return SCENARIOS / "smoke.yaml"


@pytest.fixture
def deal() -> Path:
    return SCENARIOS / "deal.yaml"


def run_cli(*args: str | Path, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python -m market.run ARGS`` in a subprocess, as a user would type it."""
    env = {**os.environ, "PYTHONHASHSEED": "0", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "market.run", *map(str, args)],
        capture_output=True, text=True, cwd=cwd or ROOT, env=env, timeout=timeout,
    )


def export(run_dir: Path) -> str:
    """The run's event export, as ``python -m market.ledger`` prints it."""
    from market.ledger import Ledger

    with Ledger(run_dir) as ledger:
        return "".join(line + "\n" for line in ledger.export_lines())
