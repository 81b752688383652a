"""How much watching slows a run: scenarios/deal.yaml at full speed, with and without ``--watch``.

    python benchmarks/watch_overhead.py [--repeats 5] [--browser]

Each repeat runs deal.yaml twice into fresh folders (per-run report off):
plain, then watched (the live watcher on every batch, its server up, and a
page reading the event stream: a plain HTTP client, or with ``--browser``
the real page in headless Chromium). Prints the median wall time of each,
the overhead, how many snapshots the page received and whether its last one
shows the run's final deal count (it kept up). Also checks that both ledgers
are byte-identical.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def run_once(scenario: Path, out: Path, watched: bool, browser: object | None) -> tuple[float, dict[str, object]]:
    from running import runner
    from running.runfolder import RunFolder

    prepared = runner.plan(scenario, run_dir=out)
    folder = RunFolder.create(out.parent, "deal", exact=out)
    if not watched:
        t, cpu = time.perf_counter(), time.process_time()
        runner.start(prepared, folder, after_run=False)
        return time.perf_counter() - t, {"cpu": round(time.process_time() - cpu, 2)}
    from watch.live import LiveServer

    live = LiveServer()
    seen: dict[str, object] = {"snapshots": 0, "last": {}}
    page = None
    if browser is None:
        threading.Thread(target=_read_stream, args=(live.url, seen), daemon=True).start()
    else:
        page = browser.new_page()  # type: ignore[attr-defined]
        page.goto(live.url)
    time.sleep(0.5)  # the page is connected before the run starts
    t, cpu = time.perf_counter(), time.process_time()
    result = runner.start(prepared, folder, on_batch=live.watch.chain(None, out.name), after_run=False)
    elapsed, cpu = time.perf_counter() - t, time.process_time() - cpu
    live.watch.finish("complete")
    deals = sum(m.deals for m in result.summary.markets)
    if page is not None:
        page.wait_for_function("document.querySelector('#status').textContent === 'complete'", timeout=10_000)
        seen["last"] = {"counts": {"deals": int(page.inner_text("#n-deals"))}}
        seen["snapshots"] = page.evaluate("window.snapshots")
        page.close()
    else:
        time.sleep(0.5)
    live.close()
    shown = seen["last"].get("counts", {}).get("deals")  # type: ignore[attr-defined]
    return elapsed, {"cpu": round(cpu, 2), "snapshots": seen["snapshots"], "page_deals": shown,
                     "run_deals_market_A": result.summary.markets[0].deals, "run_deals": deals}


def _read_stream(url: str, seen: dict[str, object]) -> None:
    with urllib.request.urlopen(url + "events") as stream:
        for line in stream:
            if line.startswith(b"data: "):
                seen["snapshots"] = int(seen["snapshots"]) + 1  # type: ignore[call-overload]
                seen["last"] = json.loads(line[6:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--browser", action="store_true", help="read the page in headless Chromium")
    args = parser.parse_args()
    from market.ledger import Ledger

    browser = playwright = None
    if args.browser:
        from playwright.sync_api import sync_playwright

        playwright = sync_playwright().start()
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
    plain, watched, notes = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        scenario = Path(tmp) / "deal.yaml"  # one copy, so both runs of a pair read the same scenario
        shutil.copyfile(ROOT / "scenarios" / "deal.yaml", scenario)
        shutil.copyfile(ROOT / "scenarios" / "catalog.csv", Path(tmp) / "catalog.csv")
        for k in range(args.repeats):
            a, b = Path(tmp) / f"plain{k}", Path(tmp) / f"watched{k}"
            plain_time, plain_note = run_once(scenario, a, False, None)
            plain.append(plain_time)
            elapsed, note = run_once(scenario, b, True, browser)
            watched.append(elapsed)
            notes.append(note)
            with Ledger(a) as la, Ledger(b) as lb:
                same = list(la.export_lines()) == list(lb.export_lines())
            print(f"repeat {k + 1}: plain {plain[-1]:.2f} s (cpu {plain_note['cpu']} s), watched {elapsed:.2f} s, "
                  f"ledgers identical: {same}, page: {note}")
            if not same:
                raise SystemExit("the watched run's ledger differs")
    if browser is not None:
        browser.close()
        playwright.stop()  # type: ignore[union-attr]
    p, w = statistics.median(plain), statistics.median(watched)
    print(f"deal.yaml at full speed, median of {args.repeats}: plain {p:.2f} s, watched {w:.2f} s, "
          f"overhead {100 * (w - p) / p:+.1f}% ({'browser' if args.browser else 'HTTP stream reader'})")


if __name__ == "__main__":
    main()
