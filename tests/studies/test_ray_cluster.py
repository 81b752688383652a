"""Studies on a real two-node Ray cluster whose worker node cannot see the driver's disk.

The head node (``ray start --head --num-cpus=0``: it runs no task) and a second node
(``ray start --address=HEAD --num-cpus=1``, its own process) run on this machine; the second
node runs in its own mount namespace with an empty tmpfs over the driver's folder, so every
replication runs where the scenario, its catalog and the study folder do not exist. The pooled
results must equal a run in local processes; a worker killed mid-replication is retried, or
(with no retries left) reported, and the study then resumes.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import psutil
import pytest

from market.ledger import Ledger
from running import runner
from running.runfolder import RunFolder
from studies import experiment
from studies.sweep import Shipment, pack_scenario, receive, run_shipped, sweep

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"
START_TIMEOUT = 180.0  # Ray's own start takes 15-45 s here under a load of 10-18 on 2 cores
DRIVER_TIMEOUT = 240.0
BIG = ["--set", "participants.generate.count=400", "--set", "days=3"]  # a replication of a few seconds: time to kill

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(log: Path, process: subprocess.Popen[bytes], what: str) -> None:
    """Until ``log`` says Ray started; fails if the process ends first or after START_TIMEOUT."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.is_file() else ""
        if "Ray runtime started" in text:
            return
        if process.poll() is not None:
            pytest.fail(f"{what} ended before it started:\n{text[-3000:]}")
        time.sleep(0.5)
    pytest.fail(f"{what} did not start in {START_TIMEOUT:.0f} s:\n{log.read_text(errors='replace')[-3000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """End a node: its process group (ray start --block and what it started), then any descendant left."""
    with contextlib.suppress(psutil.Error):
        family = [process.pid, *(c.pid for c in psutil.Process(process.pid).children(recursive=True))]
    for sig, wait in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=wait)
        if process.poll() is not None:
            break
    for pid in family:  # a worker that left the group
        with contextlib.suppress(psutil.Error):
            psutil.Process(pid).kill()


@dataclass
class Cluster:
    address: str
    env: dict[str, str]
    driver: Path  # the driver's folder: the worker node sees an empty tmpfs here
    node: subprocess.Popen[bytes]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """A driver process (``python ARGS``) joined to the cluster, from the driver's folder."""
        return subprocess.run([sys.executable, *args], cwd=self.driver, env=self.env, capture_output=True, text=True,
                              timeout=DRIVER_TIMEOUT, check=False)

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, *args], cwd=self.driver, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def kill_running_replication(self, driver: subprocess.Popen[str]) -> int:
        """Kill the node's worker process while it runs a replication; returns its pid."""
        deadline = time.monotonic() + DRIVER_TIMEOUT
        while time.monotonic() < deadline and driver.poll() is None:
            for proc in psutil.Process(self.node.pid).children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    if proc.cmdline()[:1] == ["ray::run_shipped"]:
                        proc.kill()
                        return proc.pid
            time.sleep(0.05)
        pytest.fail(f"no worker was seen running a replication; the driver said:\n{driver.communicate()[1][-3000:]}")


@contextlib.contextmanager
def two_nodes(driver: Path) -> Iterator[Cluster]:
    """A head running no task and a second node that sees an empty tmpfs over ``driver``; stopped on exit."""
    driver.mkdir(parents=True)
    for name in ("smoke.yaml", "catalog.csv"):  # the scenario lives only on the driver's disk
        shutil.copyfile(SCENARIOS / name, driver / name)
    temp = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))  # short: Ray's socket paths have a length limit
    # a token only this cluster knows; the raylet waits up to 2 minutes (not 15 s) for its agents on a busy machine
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
           "RAY_USAGE_STATS_ENABLED": "0", "RAY_agent_register_timeout_ms": "120000"}
    port = _free_port()
    common = ["--object-store-memory=100000000", "--disable-usage-stats", "--block"]
    started: list[subprocess.Popen[bytes]] = []
    try:
        with open(temp / "head.log", "wb") as log:
            head = subprocess.Popen(
                ["ray", "start", "--head", f"--port={port}", "--num-cpus=0", f"--temp-dir={temp}",
                 "--include-dashboard=false", f"--dashboard-port={_free_port()}",
                 f"--dashboard-agent-listen-port={_free_port()}", *common],
                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        started.append(head)
        _wait_for(temp / "head.log", head, "the head node")
        join = " ".join(["exec", "ray", "start", f"--address=127.0.0.1:{port}", "--num-cpus=1",
                         f"--dashboard-agent-listen-port={_free_port()}", *common])
        with open(temp / "node.log", "wb") as log:
            node = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                 f"mount -t tmpfs none '{driver}' && {join}"],
                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        started.append(node)
        _wait_for(temp / "node.log", node, "the second node")
        yield Cluster(f"127.0.0.1:{port}", env, driver, node)
    finally:
        for process in reversed(started):
            _stop(process)
        shutil.rmtree(temp, ignore_errors=True)


def _same_runs(ours: Path, local: Path, names: list[str]) -> None:
    """The same ledger (every event, byte for byte as exported) and summary in each run folder."""
    for name in names:
        for run in (ours / name, local / name):
            assert (run / "ledger.sqlite").is_file(), run
        export = [subprocess.run([sys.executable, "-m", "market.ledger", str(r / name)], capture_output=True,
                                 check=True, timeout=120).stdout for r in (ours, local)]
        assert export[0] == export[1] and export[0], name
        assert (ours / name / "summary.json").read_bytes() == (local / name / "summary.json").read_bytes()
        assert (ours / name / "scenario.yaml").read_bytes() == (local / name / "scenario.yaml").read_bytes()


def _worker_node_cannot_see_the_driver_folder(cluster: Cluster) -> None:
    raylet = [p for p in psutil.Process(cluster.node.pid).children(recursive=True) if p.name() == "raylet"]
    assert raylet, "the second node has no raylet"
    assert (cluster.driver / "smoke.yaml").is_file()
    seen = Path(f"/proc/{raylet[0].pid}/root") / str(cluster.driver).lstrip("/")
    assert seen.is_dir() and list(seen.iterdir()) == []  # its own (empty) tmpfs over the driver's folder


def _sweep_equals_a_local_sweep(cluster: Cluster, tmp_path: Path) -> None:
    started = time.perf_counter()
    done = cluster.run("-m", "market.sweep", "smoke.yaml", "--replications", "3", "--seed", "100",
                       "--ray", cluster.address, "--out", "sweep", "--quiet")
    wall = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-3000:]
    out = cluster.driver / "sweep"
    record = json.loads((out / "sweep.json").read_text())
    assert record["complete"] and record["failed"] == [] and record["executor"] == f"ray:{cluster.address}"
    local = sweep(cluster.driver / "smoke.yaml", 3, out=tmp_path / "local", seed=100, report=False)
    assert record["deals"] == local["deals"]
    _same_runs(out, tmp_path / "local", record["runs"])
    assert (out / "report.html").is_file()  # the pooled report, written by the driver from the returned runs
    assert not (out / ".incoming").exists()
    print(f"cluster sweep: 2 nodes, 3 replications, {wall:.1f} s (driver process included); equal to local")


def _experiment_equals_a_local_experiment(cluster: Cluster, tmp_path: Path) -> None:
    (cluster.driver / "budget.yaml").write_text(
        "scenario: smoke.yaml\nreplications: 2\nseed: 5\nfactors:\n  participants.budget: ['$50', '$100']\n")
    started = time.perf_counter()
    done = cluster.run("-m", "market.experiment", "budget.yaml", "--ray", cluster.address, "--out", "exp",
                       "--no-report", "--quiet")
    wall = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-3000:]
    local = experiment.run(experiment.load(cluster.driver / "budget.yaml"), out=tmp_path / "local", report=False)
    ours = pl.read_parquet(cluster.driver / "exp" / experiment.RUNS_TABLE)
    assert ours.height == local["rows"] > 0
    assert ours.equals(pl.read_parquet(tmp_path / "local" / experiment.RUNS_TABLE))
    print(f"cluster experiment: 2 nodes, 2 cells x 2 replications, {wall:.1f} s; runs.parquet equal to local")


def _big_local(cluster: Cluster, out: Path) -> Path:
    """Two replications of a larger market (a few seconds each), run in a local process."""
    changes = {"participants.generate.count": 400, "days": 3}
    record = sweep(cluster.driver / "smoke.yaml", 2, out=out, seed=300, report=False, changes=changes)
    assert record["complete"]
    return out


def _a_killed_worker_is_retried(cluster: Cluster, big_local: Path) -> None:
    started = time.perf_counter()
    driver = cluster.start("-m", "market.sweep", "smoke.yaml", "-n", "2", "--seed", "300", *BIG, "--ray",
                           cluster.address, "--out", "retried", "--no-report", "--quiet")
    killed = cluster.kill_running_replication(driver)
    _, stderr = driver.communicate(timeout=DRIVER_TIMEOUT)
    assert driver.returncode == 0, stderr[-3000:]
    assert not psutil.pid_exists(killed) or psutil.Process(killed).status() == psutil.STATUS_ZOMBIE
    record = json.loads((cluster.driver / "retried" / "sweep.json").read_text())
    assert record["complete"] and record["failed"] == [] and record["skipped"] == 0
    _same_runs(cluster.driver / "retried", big_local, record["runs"])
    print(f"killed worker retried: 2 replications of 400 traders x 3 days, {time.perf_counter() - started:.1f} s; "
          "equal to local")


def _a_worker_killed_without_retries_is_reported_and_the_sweep_resumes(cluster: Cluster, big_local: Path) -> None:
    code = ("import json, sys; from pathlib import Path; from studies.sweep import sweep; "
            "r = sweep(Path('smoke.yaml'), 2, seed=300, out=Path('lost'), report=False, ray_retries=0, "
            f"ray_address={cluster.address!r}, changes={{'participants.generate.count': 400, 'days': 3}}); "
            "print(json.dumps(r))")
    started = time.perf_counter()
    driver = cluster.start("-c", code)
    cluster.kill_running_replication(driver)
    stdout, stderr = driver.communicate(timeout=DRIVER_TIMEOUT)
    assert driver.returncode == 0, stderr[-3000:]
    record = json.loads(stdout.strip().splitlines()[-1])
    assert not record["complete"] and len(record["failed"]) == 1
    lost = record["failed"][0]
    assert lost["run"] in record["runs"] and "WorkerCrashedError" in lost["error"]
    assert not (cluster.driver / "lost" / lost["run"]).exists()  # nothing half-written where the runs live
    # the same command again runs only what is missing
    again = cluster.run("-m", "market.sweep", "smoke.yaml", "-n", "2", "--seed", "300", *BIG, "--ray",
                        cluster.address, "--out", "lost", "--no-report", "--quiet")
    assert again.returncode == 0, again.stderr[-3000:]
    resumed = json.loads((cluster.driver / "lost" / "sweep.json").read_text())
    assert resumed["complete"] and resumed["skipped"] == 1 and resumed["failed"] == []
    _same_runs(cluster.driver / "lost", big_local, resumed["runs"])
    print(f"killed worker without retries: reported ({lost['error'][:40]}...), resumed: 1 of 2 run again, "
          f"{time.perf_counter() - started:.1f} s for both commands; equal to local")



@pytest.mark.slow
@pytest.mark.xdist_group("ray")  # one Ray cluster at a time
@pytest.mark.skipif(shutil.which("unshare") is None or os.geteuid() != 0,
                    reason="needs unshare and root for a private mount namespace")
def test_studies_on_a_two_node_cluster_without_a_shared_disk(tmp_path: Path) -> None:
    """One cluster for every step (a module fixture may be set up twice under pytest-xdist)."""
    started = time.perf_counter()
    with two_nodes(tmp_path / "driver") as cluster:
        print(f"\ncluster of 2 nodes up in {time.perf_counter() - started:.1f} s")
        _worker_node_cannot_see_the_driver_folder(cluster)
        _sweep_equals_a_local_sweep(cluster, tmp_path / "sweep")
        _experiment_equals_a_local_experiment(cluster, tmp_path / "experiment")
        big = _big_local(cluster, tmp_path / "big")
        _a_killed_worker_is_retried(cluster, big)
        _a_worker_killed_without_retries_is_reported_and_the_sweep_resumes(cluster, big)
    print(f"whole test (start, five steps, stop): {time.perf_counter() - started:.1f} s")

# --- what travels, without a cluster -------------------------------------------------


def test_a_shipped_replication_needs_no_path_and_equals_a_local_run(tmp_path: Path) -> None:
    inputs = pack_scenario(str(SCENARIOS / "smoke.yaml"))
    assert sorted(inputs) == ["catalog.csv", "scenario.yaml"]
    result = run_shipped(inputs, Shipment(name="smoke-s9", seed=9))
    assert result["complete"] and not result["skipped"]
    receive(result["files"], tmp_path / "ours" / "smoke-s9")
    assert not (tmp_path / "ours" / ".incoming").exists()
    local = tmp_path / "local" / "smoke-s9"
    runner.start(runner.plan(SCENARIOS / "smoke.yaml", seed=9, run_dir=local),
                 RunFolder.create(local.parent, local.name, exact=local), after_run=False)
    _same_runs(tmp_path / "ours", tmp_path / "local", ["smoke-s9"])


def test_an_unfinished_run_travels_with_its_task_and_is_resumed(tmp_path: Path) -> None:
    partial = tmp_path / "sweep" / "smoke-s9"
    prepared = runner.plan(SCENARIOS / "smoke.yaml", seed=9, run_dir=partial)
    stopped = runner.start(prepared, RunFolder.create(partial.parent, partial.name, exact=partial),
                           until=4 * 3600, after_run=False)
    assert not stopped.complete
    with Ledger(partial / "ledger.sqlite") as ledger:
        before = ledger.last_seq
    assert before > 0
    files = {p.name: p.read_bytes() for p in partial.iterdir() if p.is_file()}
    result = run_shipped(pack_scenario(str(SCENARIOS / "smoke.yaml")), Shipment(name="smoke-s9", seed=9,
                                                                                run_files=files))
    assert result["complete"]
    receive(result["files"], partial)  # replaces the unfinished folder
    local = tmp_path / "local" / "smoke-s9"
    runner.start(runner.plan(SCENARIOS / "smoke.yaml", seed=9, run_dir=local),
                 RunFolder.create(local.parent, local.name, exact=local), after_run=False)
    _same_runs(tmp_path / "sweep", tmp_path / "local", ["smoke-s9"])
    with Ledger(partial / "ledger.sqlite") as ledger:
        assert ledger.last_seq > before and ledger.status("state") == "complete"


def test_a_returned_file_name_must_be_a_plain_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a plain file name"):
        receive({"../escape": b"x"}, tmp_path / "run")
    assert not (tmp_path / "escape").exists()
