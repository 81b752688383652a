"""Time loading and analysing deal.yaml's run folder and writing its report.

    python benchmarks/analysis_deal.py [RUN_DIR]

Without RUN_DIR it first runs scenarios/deal.yaml into a temporary folder
(with the per-run report switched off, so the report is timed here).
"""

from __future__ import annotations

import time

from deal_run import deal_run_dir


def main() -> None:
    from analysis import load_run
    from analysis.report import analyse, render

    run_dir = deal_run_dir(21)
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
