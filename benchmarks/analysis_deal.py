"""Time loading and analysing deal.yaml's run folder and writing its report.

    python benchmarks/analysis_deal.py [RUN_DIR]

Without RUN_DIR it first runs scenarios/deal.yaml into a temporary folder
(with the per-run report switched off, so the report is timed here).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    from analysis import load_run
    from analysis.report import analyse, render

    if len(sys.argv) > 1:
        run_dir = Path(sys.argv[1])
    else:
        from market import runner
        from market.runfolder import RunFolder

        os.environ["MARKET_AFTER_RUN_REPORT"] = "0"
        run_dir = Path(tempfile.mkdtemp()) / "deal"
        t = time.perf_counter()
        prepared = runner.plan(ROOT / "scenarios" / "deal.yaml", run_dir=run_dir)
        runner.start(prepared, RunFolder.create(run_dir.parent, "deal", exact=run_dir))
        print(f"run deal.yaml:       {time.perf_counter() - t:6.2f} s")
    t0 = time.perf_counter()
    data = load_run(run_dir)
    t1 = time.perf_counter()
    analysis = analyse(data)
    t2 = time.perf_counter()
    text = render(analysis)
    (run_dir / "report.html").write_text(text, encoding="utf-8")
    t3 = time.perf_counter()
    print(f"deals: {data.deals.height}, listings: {data.listings.height}, offers: {data.offers.height}")
    print(f"load run folder:     {t1 - t0:6.2f} s")
    print(f"analyse (incl. MILP):{t2 - t1:6.2f} s")
    print(f"render + write html: {t3 - t2:6.2f} s  ({len(text) / 1e6:.1f} MB)")
    print(f"total:               {t3 - t0:6.2f} s")


if __name__ == "__main__":
    main()
