"""How the engine scales with the number of traders (one market, one simulated week).

Each size runs in a fresh subprocess so peak memory (ru_maxrss) is its own.
Prints wall time, CPU time (steadier than wall on a shared machine), events,
events/s and peak memory per size, and the growth of time per trader between
sizes (1.0 = linear, 10.0 = quadratic for 10x). The timed part is planning the
run (generating the participants) and running the engine with its ledger; the
after-run report is skipped.

    python benchmarks/scale.py [--sizes 1000,10000]
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one(size: int) -> dict[str, float]:
    import yaml

    from running import runner
    from running.runfolder import RunFolder

    data = yaml.safe_load((ROOT / "scenarios" / "deal.yaml").read_text())
    data["name"] = f"scale{size}"
    data["participants"]["generate"]["count"] = size
    data["markets"] = [{"name": "B", "tiers": {"frontier": 0.5, "small": 0.5}}]
    data.pop("targets", None)  # the published figures file is not copied beside it
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scale.yaml"
        path.write_text(yaml.safe_dump(data))
        (Path(tmp) / "catalog.csv").write_text((ROOT / "scenarios" / "catalog.csv").read_text())
        start, cpu = time.perf_counter(), time.process_time()
        prepared = runner.plan(path)
        folder = RunFolder.create(Path(tmp), "run", exact=Path(tmp) / "run")
        result = runner.start(prepared, folder, after_run=False)  # the engine alone, no report
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB on Linux
    market = result.summary.markets[0]
    return {"traders": size, "wall_s": wall, "cpu_s": cpu, "events": result.summary.events, "deals": market.deals,
            "listings": market.listings, "peak_mib": peak}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one)))
        return
    rows = []
    for size in map(int, args.sizes.split(",")):
        out = subprocess.run([sys.executable, __file__, "--one", str(size)], capture_output=True, text=True,
                             check=True, cwd=ROOT)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        print(f"{r['traders']:>7} traders  {r['wall_s']:7.1f} s  cpu {r['cpu_s']:7.1f} s  {r['events']:>9,} events  "
              f"{r['events'] / r['wall_s']:>9,.0f} events/s  {r['deals']:>7,} deals  peak {r['peak_mib']:,.0f} MiB "
              f"({r['peak_mib'] * 1024 / r['traders']:.1f} KiB/trader)  "
              f"{r['cpu_s'] / r['events'] * 1e6:.1f} us cpu/event")
    for a, b in itertools.pairwise(rows):
        size_ratio = b["traders"] / a["traders"]
        time_ratio = b["cpu_s"] / a["cpu_s"]
        print(f"{a['traders']} -> {b['traders']} traders (x{size_ratio:g}): cpu time x{time_ratio:.1f}, "
              f"time per trader x{time_ratio / size_ratio:.2f}, events x{b['events'] / a['events']:.1f}, "
              f"cpu time per event x{time_ratio / (b['events'] / a['events']):.2f}")


if __name__ == "__main__":
    main()
