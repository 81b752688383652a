"""Figures for experiments: the example experiment on 1 and 2 local workers and on Ray local,
results identical across them, the cross-cell report's size and load time, and batch_run's
overhead per run against the same runs done by hand.

    python benchmarks/experiment.py [REPLICATIONS] [--no-ray] [--batch-only]

REPLICATIONS (default 16, the example's) per cell of experiments/tier_share.yaml
(3 shares x 2 budgets of deal.yaml, offline). On a shared 2-core machine pass fewer
(e.g. 2): the script says how many it ran.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from market.ledger import Ledger  # noqa: E402
from running import runner  # noqa: E402
from running.runfolder import RunFolder  # noqa: E402
from studies.experiment import batch_run, design, load, run, tidy  # noqa: E402


def ledger_digests(folder: Path) -> dict[str, str]:
    record = json.loads((folder / "experiment.json").read_text())
    out = {}
    for entry in record["runs"]:
        with Ledger(folder / entry["run_dir"] / "ledger.sqlite") as ledger:
            out[entry["run_dir"]] = hashlib.sha256("\n".join(ledger.export_lines()).encode()).hexdigest()
    return out


def page_load_seconds(page_path: Path) -> float | None:
    """Seconds until headless Chromium has drawn every plot of the page (None: no browser here)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    chromium = next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if Path(p).exists()), None)
    if chromium is None:
        return None
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page()
        started = time.perf_counter()
        page.goto(page_path.as_uri(), wait_until="load")
        plots = "[...document.querySelectorAll('.js-plotly-plot')]"
        page.wait_for_function(f"{plots}.length > 0 && {plots}.every(d => d.querySelector('.main-svg'))")
        seconds = time.perf_counter() - started
        browser.close()
    return seconds


def experiment_figures(replications: int, with_ray: bool, work: Path) -> None:
    spec_path = ROOT / "experiments" / "tier_share.yaml"
    example = load(spec_path)
    plan = design(example.spec.model_copy(update={"replications": replications}), spec_path, spec_path.parent)
    runs = len(plan.cells) * replications
    print(f"example experiment: {len(plan.cells)} cells x {replications} replications = {runs} runs of deal.yaml "
          f"(offline){'' if replications == 16 else ' (the file says 16; fewer on this shared machine)'}")
    walls: dict[str, float] = {}
    folders: dict[str, Path] = {}
    configs = [("1 worker", 1, None), ("2 workers", 2, None)]
    configs += [("Ray local, 2 CPUs", 2, "local")] if with_ray else []
    for label, workers, ray in configs:
        folder = work / label.split(",")[0].replace(" ", "-")
        started = time.perf_counter()
        try:
            record = run(plan, out=folder, workers=workers, ray_address=ray, report=False)
        except ValueError as exc:
            print(f"  {label:>18}: could not run ({exc})")
            continue
        walls[label] = time.perf_counter() - started
        folders[label] = folder
        assert record["complete"], f"{label}: not every run completed"
        print(f"  {label:>18}: {walls[label]:7.1f} s wall, {walls[label] / runs:5.2f} s per run, "
              f"x{walls['1 worker'] / walls[label]:.2f} vs 1 worker")
    reference = folders["1 worker"]
    for label, folder in folders.items():
        if folder == reference:
            continue
        same_ledgers = ledger_digests(folder) == ledger_digests(reference)
        same_table = pl.read_parquet(folder / "runs.parquet").equals(pl.read_parquet(reference / "runs.parquet"))
        print(f"  {label} vs 1 worker: ledgers byte-identical {same_ledgers}, runs.parquet identical {same_table}")
    from analysis.experiment_report import write

    started = time.perf_counter()
    page = write(reference)
    written = time.perf_counter() - started
    loaded = page_load_seconds(page)
    load_text = f"{loaded:.2f} s until every plot is drawn in headless Chromium" if loaded else "no browser here"
    print(f"cross-cell report: {page.stat().st_size / 1e6:.2f} MB (plotly.js inlined), written in {written:.1f} s "
          f"(effects of {runs} runs, estimates, page); {load_text}")


def batch_run_overhead(work: Path) -> None:
    """batch_run over 2 cells x 3 replications of smoke.yaml against the same runs by hand (in this process)."""
    scenario = ROOT / "scenarios" / "smoke.yaml"
    parameters = {"participants.budget": ["$50", "$100"]}
    started = time.perf_counter()
    frame = batch_run(scenario, parameters=parameters, replications=3, workers=1, out=work / "batch")
    batch = time.perf_counter() - started
    record = json.loads((work / "batch" / "experiment.json").read_text())
    started = time.perf_counter()
    by_hand = work / "by_hand"
    for entry in record["runs"]:
        cell_file = work / "batch" / "cells" / entry["cell"] / "scenario.yaml"
        run_dir = by_hand / entry["run_dir"]
        prepared = runner.plan(cell_file, seed=entry["seed"], run_dir=run_dir)
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        runner.start(prepared, RunFolder.create(run_dir.parent, run_dir.name, exact=run_dir), after_run=False)
    (by_hand / "experiment.json").write_text(json.dumps(record))
    hand_frame = tidy(by_hand, record)
    hand = time.perf_counter() - started
    runs = len(record["runs"])
    same = hand_frame.equals(frame) and ledger_digests(by_hand) == ledger_digests(work / "batch")
    print(f"batch_run: {runs} runs of smoke.yaml in {batch:.2f} s; by hand (plan + start in this process, "
          f"same seeds, same table) {hand:.2f} s; overhead {(batch - hand) / runs:+.2f} s per run "
          f"(x{batch / hand:.2f}); same ledgers and table: {same}")
    print("  (with one worker batch_run runs in this process; its extra cost is validating every cell first, "
          "writing the cells' scenarios and experiment.json, and building the table)")


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    replications = int(args[0]) if args else 16
    with tempfile.TemporaryDirectory(prefix="bench-experiment-") as tmp:
        work = Path(tmp)
        batch_run_overhead(work)
        if "--batch-only" not in sys.argv:
            experiment_figures(replications, "--no-ray" not in sys.argv, work)


if __name__ == "__main__":
    main()
