"""Figures for calibration: a study of deal.yaml against the published Project Deal targets.

    python benchmarks/calibrate_deal.py [TRIALS] [SEEDS] [HOLDOUT] [WORKERS]

Defaults 8 trials x 2 seeds, 4 held-out seeds, 2 workers, no ablation: a short study for this
shared 2-core machine (deal.yaml itself came from the study its header names; see README). Prints the
wall time, the runs done, the best parameters and the fit table (each moment's target
against the simulated mean with its 95% interval over the held-out seeds, inside or not by the
targets' rule).
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from studies.calibrate import calibrate, prepare  # noqa: E402

PARAMETERS: list[str] = []  # the free parameters and bounds deal.yaml declares under calibration:


def main() -> None:
    args = [int(a) for a in sys.argv[1:]]
    trials, seeds, holdout, workers = (args + [8, 2, 4, 2][len(args):])[:4]
    cal = prepare(ROOT / "scenarios" / "deal.yaml", ROOT / "scenarios" / "targets" / "project_deal.yaml",
                  PARAMETERS, seeds, holdout, seed=1)
    with tempfile.TemporaryDirectory(prefix="bench-calibrate-") as tmp:
        started = time.perf_counter()
        record = calibrate(cal, trials, Path(tmp) / "study", workers=workers, ablation=False)
        wall = time.perf_counter() - started
    runs = trials * seeds + holdout
    print(f"calibration of deal.yaml: {trials} trials x {seeds} seeds + {holdout} held-out seeds = {runs} weeks on "
          f"{workers} workers in {wall:.0f} s ({wall / runs:.1f} s per week); "
          f"parameters: {', '.join(p.path for p in cal.parameters)}")
    best = record["best"]
    print(f"best trial {best['trial']}: distance {best['distance']:.3g}; "
          + ", ".join(f"{k} = {v:.3g}" if isinstance(v, float) else f"{k} = {v}" for k, v in best["params"].items()))
    print(f"{'moment':>24} {'target':>10} {'simulated':>10} {'95% interval':>22}  inside")
    for row in record["fit"]:
        if row["why_not_simulated"]:
            print(f"{row['moment']:>24} {row['target']:>10,.4g} {'-':>10} {'not simulated':>22}")
            continue
        low, high = row["low"], row["high"]
        interval = "-" if low is None or math.isnan(low) else f"[{low:,.4g}, {high:,.4g}]"
        print(f"{row['moment']:>24} {row['target']:>10,.4g} {row['simulated']:>10,.4g} {interval:>22}  "
              f"{'yes' if row['inside'] else 'NO'} ({row['rule']})")
    print("sensitivity (fANOVA importance):", record["sensitivity"])


if __name__ == "__main__":
    main()
