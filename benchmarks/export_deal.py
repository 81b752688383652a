"""Time building a run's tables from its ledger and exporting them, on deal.yaml's week.

    python benchmarks/export_deal.py [RUN_DIR]

Prints: reading and parsing the ledger's events alone (the baseline), the same
plus the projection through ``MarketState.evolve`` into tables (market/tables.py,
what ``analysis.load_run`` and ``market.export`` do), ``load_run`` itself, and the
export as Parquet and as JSON lines with the size of each. Without RUN_DIR it
first runs scenarios/deal.yaml into a temporary folder (no per-run report).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from deal_run import deal_run_dir


def _size(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.iterdir()) / 1e6


def main() -> None:
    from analysis import load_run
    from analysis.export import export
    from analysis.tables import project
    from market.ledger import Ledger

    run_dir = deal_run_dir(31)
    with Ledger(run_dir / "ledger.sqlite") as ledger:
        t0 = time.perf_counter()
        records = [(r.market, r.event) for r in ledger.records()]
        t1 = time.perf_counter()
    frames = project(records, "deal")
    t2 = time.perf_counter()
    read, projected = t1 - t0, t2 - t1
    data = load_run(run_dir)
    t3 = time.perf_counter()
    out = Path(tempfile.mkdtemp())
    export(run_dir, "parquet", out / "parquet")
    t4 = time.perf_counter()
    export(run_dir, "jsonl", out / "jsonl")
    t5 = time.perf_counter()
    rows = ", ".join(f"{name} {frame.height:,}" for name, frame in frames.items())
    print(f"events: {len(records):,}; rows: {rows}")
    print(f"read + parse events (baseline): {read:6.2f} s")
    print(f"project into tables:            {projected:6.2f} s  ({projected / read:.2f}x the baseline)")
    print(f"load_run (all of it):           {t3 - t2:6.2f} s  ({data.deals.height:,} deals)")
    print(f"export parquet:                 {t4 - t3:6.2f} s  ({_size(out / 'parquet'):.1f} MB)")
    print(f"export jsonl:                   {t5 - t4:6.2f} s  ({_size(out / 'jsonl'):.1f} MB)")


if __name__ == "__main__":
    main()
