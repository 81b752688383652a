"""Replications: local processes and real Ray in local mode; pooled report; bad input; continuing."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from analysis import load_runs
from analysis.report import analyse
from studies.sweep import Replication, open_workers, sweep
from tests.analysis.conftest import SCENARIOS, pairs_scenario


@pytest.mark.slow
def test_local_sweep_pools_runs_and_continues(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    record = sweep(SCENARIOS / "smoke.yaml", 3, workers=2, out=out, seed=100)
    assert record["complete"] and record["seeds"] == [100, 101, 102]
    runs = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert runs == ["smoke-s100", "smoke-s101", "smoke-s102"]
    assert (out / "report.html").is_file()
    assert not (out / "smoke-s100" / "report.html").exists()  # one pooled report, not one per run
    assert not (out / "smoke-s100" / "fairness.jsonl").exists()  # fairness is not simulated
    data = load_runs([out])
    assert sorted(data.deals["run"].unique()) == runs
    assert record["deals"] == [data.deals.filter(run=r).height for r in ["smoke-s100", "smoke-s101", "smoke-s102"]]
    # the same seed gives the same ledger as a plain run would
    again = sweep(SCENARIOS / "smoke.yaml", 3, workers=1, out=out, seed=100, report=False)
    assert again["skipped"] == 3 and again["deals"] == record["deals"]


@pytest.mark.slow
@pytest.mark.xdist_group("ray")  # one local Ray cluster at a time
def test_sweep_on_ray_in_local_mode_pools_across_seeds(tmp_path: Path) -> None:
    scenario = pairs_scenario(tmp_path / "scenario")
    out = tmp_path / "sweep"
    record = sweep(scenario, 3, workers=2, ray_address="local", out=out)
    assert record["complete"] and record["executor"] == "ray:local"
    saved = json.loads((out / "sweep.json").read_text())
    assert saved["complete"] and len(saved["runs"]) == 3
    a = analyse(load_runs([out]))
    assert a.replications == 3 and a.per_run is not None
    seller = a.headline[0]
    assert seller.n == 3 and "replications" in seller.method
    values = a.per_run.filter(a.per_run["name"] == seller.name)["value"]
    assert seller.value == pytest.approx(values.mean())
    assert (out / "report.html").stat().st_size > 1_000_000


@pytest.mark.slow
@pytest.mark.parametrize(("args", "message"), [
    (["--replications", "0"], "--replications must be 1 to 10,000, got 0"),
    (["--replications", "100000000"], "--replications must be 1 to 10,000, got 100000000"),
    (["--workers", "0"], "--workers must be 1 to 256, got 0"),
    (["--workers", "100000"], "--workers must be 1 to 256, got 100000"),
    (["--markets", "Z"], "unknown market Z"),
])
def test_cli_bad_input(tmp_path: Path, args: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "market.sweep", str(SCENARIOS / "smoke.yaml"), "--out", str(tmp_path / "s"), "-q",
         *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "s").exists()


def test_workers_kept_open_run_every_batch_on_the_same_processes(tmp_path: Path) -> None:
    """A study's experiments share one set of worker processes: a second batch starts none."""
    smoke = str(SCENARIOS / "smoke.yaml")
    batches = [[Replication(smoke, seed, str(tmp_path / f"b{batch}-s{seed}"), days=1) for seed in (1, 2)]
               for batch in (1, 2)]

    def spawned() -> set[int]:  # the pool's worker processes (not multiprocessing's resource tracker)
        found = set()
        for child in psutil.Process().children():
            with contextlib.suppress(psutil.Error):  # another test's child that has ended meanwhile
                if "spawn_main" in " ".join(child.cmdline()):
                    found.add(child.pid)
        return found

    with open_workers(2) as on:
        assert on.executor == "processes" and on.workers == 2
        first = list(on.run(batches[0]))
        workers = spawned()
        second = list(on.run(batches[1]))
        assert spawned() == workers and 1 <= len(workers) <= 2
    assert [r["seed"] for r in sorted(first + second, key=lambda r: r["run_dir"])] == [1, 2, 1, 2]
    assert all(r["complete"] and not r["skipped"] for r in first + second)
    assert not workers & spawned(), "closing stops the processes"
    with open_workers(1) as here:
        assert here.executor == "this process"
        again = list(here.run(batches[0]))
        assert [r["seed"] for r in again] == [1, 2] and all(r["skipped"] for r in again) and not spawned()
