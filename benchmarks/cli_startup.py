"""How long the ``market`` command takes to answer, and what loading each subcommand's module costs.

    python benchmarks/cli_startup.py [--repeats 5]

Runs each command line in a fresh interpreter (as a shell would) and prints the
median wall time, against ``python -c pass`` measured in the same process.
``market -h`` imports no subcommand module (the subcommands are loaded when they
run), so it should cost about as much as the bare interpreter plus typer and rich;
``market SUB -h`` pays for SUB's own imports, exactly as ``python -m MODULE -h``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKET = [sys.executable, "-m", "cli"]
COMMANDS = {
    "python -c pass (baseline)": [sys.executable, "-c", "pass"],
    "market --version": [*MARKET, "--version"],
    "market -h": [*MARKET, "-h"],
    "market run -h": [*MARKET, "run", "-h"],
    "python -m market.run -h": [sys.executable, "-m", "market.run", "-h"],
    "market watch -h": [*MARKET, "watch", "-h"],
    "market report -h": [*MARKET, "report", "-h"],
}


def median_wall(command: list[str], repeats: int) -> float:
    """Median seconds for ``command`` to run to its end (output discarded; it must exit 0)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    """Print each command's median wall time and its ratio to the bare interpreter."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    baseline = None
    for label, command in COMMANDS.items():
        seconds = median_wall(command, args.repeats)
        baseline = baseline or seconds
        print(f"{label:28s} {seconds:6.2f} s  ({seconds / baseline:4.1f}x the bare interpreter)", flush=True)


if __name__ == "__main__":
    main()
