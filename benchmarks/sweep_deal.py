"""A sweep of deal.yaml at 1 and 2 local workers: wall time, then the pooled tier effects.

    python benchmarks/sweep_deal.py [REPLICATIONS] [WORKERS ...]    # default 32 1 2
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    from analysis import load_runs
    from analysis.report import analyse
    from market.money import format_money
    from studies.sweep import sweep

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 32
    workers = [int(w) for w in sys.argv[2:]] or [1, 2]
    base = Path(tempfile.mkdtemp())
    last = None
    for k in workers:
        out = base / f"w{k}"
        record = sweep(ROOT / "scenarios" / "deal.yaml", count, workers=k, out=out, report=False)
        print(f"{count} replications, {k} worker(s): {record['wall_seconds']:.1f} s wall "
              f"({record['wall_seconds'] / count:.2f} s per replication)", flush=True)
        last = out
    if len(workers) > 1:
        from market.ledger import Ledger

        def digest(folder: Path) -> list[int]:
            runs = sorted(p for p in folder.iterdir() if p.is_dir())
            out = []
            for run in runs:
                with Ledger(run) as ledger:
                    out.append(hash("\n".join(ledger.export_lines())))
            return out

        same = digest(base / f"w{workers[0]}") == digest(base / f"w{workers[-1]}")
        print(f"ledgers identical at {workers[0]} and {workers[-1]} workers: {same}")
    t = time.perf_counter()
    analysis = analyse(load_runs([last]))
    print(f"pooled analysis of {count} runs: {time.perf_counter() - t:.1f} s")
    for e in analysis.headline + analysis.noticed:
        show = (lambda v: format_money(round(v))) if "cents" in e.name else (lambda v: f"{v:.2f}")
        p = "-" if e.p_value is None or math.isnan(e.p_value) else f"{e.p_value:.2g}"
        print(f"  {e.name}: {show(e.value)} [95% CI {show(e.low)}, {show(e.high)}] p={p} n={e.n}")
    eff = analysis.efficiency
    print(f"  efficiency: mean {eff['efficiency'].mean():.3f}, min {eff['efficiency'].min():.3f}, "
          f"max {eff['efficiency'].max():.3f} over {eff.height} market-runs")


if __name__ == "__main__":
    main()
