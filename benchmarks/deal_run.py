"""Shared by the deal.yaml benchmarks: the run folder to time (given, or deal.yaml run now)."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def deal_run_dir(pad: int) -> Path:
    """The run folder named on the command line, or scenarios/deal.yaml run into a temporary folder first
    (no per-run report), printing its time with the label padded to ``pad`` characters."""
    if len(sys.argv) > 1:
        return Path(sys.argv[1])
    from running import runner
    from running.runfolder import RunFolder

    run_dir = Path(tempfile.mkdtemp()) / "deal"
    t = time.perf_counter()
    prepared = runner.plan(ROOT / "scenarios" / "deal.yaml", run_dir=run_dir)
    runner.start(prepared, RunFolder.create(run_dir.parent, "deal", exact=run_dir), after_run=False)
    print(f"{'run deal.yaml:':<{pad}}{time.perf_counter() - t:6.2f} s")
    return run_dir
