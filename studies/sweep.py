"""``python -m market.sweep SCENARIO.yaml --replications N``: many seeds of one scenario.

Replication ``i`` runs with seed ``base + i`` (base: ``--seed`` or the
scenario's seed) into its own run folder inside one sweep folder::

    sweeps/<scenario>-<time>/
      sweep.json            what was run, with which seeds, how, and how long it took
      <scenario>-s<seed>/   one ordinary run folder per replication
      report.html           the pooled report (written by the after-run plugins)

Replications run in local processes by default (``--workers K``) or on Ray
(``--ray local`` starts Ray here; ``--ray auto`` or ``--ray HOST:PORT`` joins a
cluster whose nodes have this project installed). A Ray task needs no shared disk:
the scenario and its catalog travel with it as data and its run folder comes back
as bytes, written into the sweep folder here (:class:`OnRay`). ``--set PATH=VALUE``
(repeatable) changes one scenario field for the whole sweep (paths as in
:mod:`studies.factors`); the changed scenario is written into the sweep folder
as ``scenario.yaml``. Running the same command
again with ``--out`` of an interrupted sweep keeps finished runs, resumes
unfinished ones and runs the rest.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import shutil
import sys
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any, Self

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from market.ledger import Ledger
from market.scenario import dump_scenario, load_scenario
from market.targets import TARGETS_FILE
from running import provenance, runner
from running.hooks import MaxCost, cost_cap
from running.run import BAD_INPUT, print_warnings
from running.runfolder import RunFolder
from running.summary import RunSummary
from studies.factors import canonical, check_runnable, load_with, parse_assignment, write_resolved

SWEEP_FILE = "sweep.json"

MAX_REPLICATIONS = 10_000
"""The most replications a sweep, or a cell of an experiment, runs."""
MAX_WORKERS = 256
"""The most local worker processes (or Ray CPUs) a run of many weeks asks for."""


def check_workers(workers: int) -> None:
    """``ValueError`` naming ``--workers`` unless it is 1 to ``MAX_WORKERS``."""
    if not 1 <= workers <= MAX_WORKERS:
        raise ValueError(f"--workers must be 1 to {MAX_WORKERS}, got {workers}")


@dataclass(frozen=True)
class Replication:
    """One replication to run: everything a worker process needs, picklable."""

    scenario: str
    seed: int
    run_dir: str
    days: int | None = None
    markets: tuple[str, ...] | None = None
    max_cost: float | None = None  # --max-cost: the run stops cleanly (resumable) once its model calls cost this


def replications(scenario_path: Path, sweep_dir: Path, count: int, base_seed: int, name: str,
                 days: int | None = None, markets: tuple[str, ...] | None = None,
                 max_cost: float | None = None) -> list[Replication]:
    """The replications of a sweep: seeds ``base_seed .. base_seed + count - 1``."""
    return [
        Replication(str(scenario_path.resolve()), base_seed + i, str(sweep_dir / f"{name}-s{base_seed + i}"),
                    days, markets, max_cost)
        for i in range(count)
    ]


def finished(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a finished run: its ledger says complete and its summary.json is written
    (a study does not run it again)."""
    folder = RunFolder(run_dir)
    if not folder.ledger.is_file() or not folder.summary.is_file():
        return False
    with Ledger(folder.ledger) as ledger:
        return ledger.status("state") == "complete"


def run_replication(rep: Replication) -> dict[str, Any]:
    """Run (or finish) one replication into its folder; returns its summary. Runs in a worker.

    Its after-run steps are left to the sweep, which writes one pooled report.
    """
    path = Path(rep.run_dir)
    if (path / "ledger.sqlite").is_file():
        folder = RunFolder.open(path)
        done = finished(path)
        result = runner.resume(folder, on_batch=cost_cap(rep.max_cost), after_run=False) if not done else None
        summary = folder.read_summary()
        return {"seed": rep.seed, "run_dir": rep.run_dir, "complete": True if done else result.complete,
                "skipped": done, "markets": _markets(summary)}
    prepared = runner.plan(rep.scenario, seed=rep.seed, days=rep.days, markets=rep.markets, run_dir=path)
    folder = RunFolder.create(path.parent, path.name, exact=path)
    result = runner.start(prepared, folder, on_batch=cost_cap(rep.max_cost), after_run=False)  # one pooled report
    return {"seed": rep.seed, "run_dir": rep.run_dir, "complete": result.complete, "skipped": False,
            "markets": _markets(result.summary)}


def _markets(summary: RunSummary | None) -> list[dict[str, Any]]:
    """A run's figures per market as summary.json has them (none for a run without one)."""
    return [m.model_dump(mode="json") for m in summary.markets] if summary is not None else []


RAY_RETRIES = 2
"""How many times Ray runs a replication again after its worker process or node died (not after an error)."""


class Workers(ABC):
    """Where replications run: this process, local worker processes or Ray (a declared port).

    A study keeps one open across its experiments (a calibration runs one per trial): each experiment
    had started its own processes, a second of imports apiece, or its own Ray. Closing stops them."""

    def __init__(self, workers: int) -> None:
        check_workers(workers)
        self.workers = workers

    @property
    @abstractmethod
    def executor(self) -> str:
        """How sweep.json and experiment.json name where the runs ran."""

    @abstractmethod
    def run(self, reps: list[Replication]) -> Iterator[dict[str, Any]]:
        """Run ``reps``; yields each one's result as it finishes. Closing the iterator early (an
        interruption, an error) cancels what has not started."""

    @abstractmethod
    def close(self) -> None:
        """Stop what was started for these runs."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InProcess(Workers):
    """One worker: the runs one after another in this process (no process to start)."""

    def __init__(self) -> None:
        super().__init__(1)

    @property
    def executor(self) -> str:
        """``this process``."""
        return "this process"

    def run(self, reps: list[Replication]) -> Iterator[dict[str, Any]]:
        """Each replication in turn."""
        for rep in reps:
            yield run_replication(rep)

    def close(self) -> None:
        """Nothing was started."""


class Processes(Workers):
    """Local worker processes (spawned as runs need them, up to ``workers``), kept until closed."""

    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        self._pool: ProcessPoolExecutor | None = None

    @property
    def executor(self) -> str:
        """``processes``."""
        return "processes"

    def run(self, reps: list[Replication]) -> Iterator[dict[str, Any]]:
        """The replications on the pool, results in the order they finish."""
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"))
        pending = {self._pool.submit(run_replication, r) for r in reps}
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
        finally:
            for future in pending:
                future.cancel()

    def close(self) -> None:
        """Shut the processes down (a run under way is waited for; none not started begins)."""
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None


def open_workers(workers: int, ray_address: str | None = None, ray_retries: int = RAY_RETRIES) -> Workers:
    """The workers ``--workers`` and ``--ray`` ask for: Ray with an address, else processes, else this process
    (``ValueError`` naming ``--workers`` unless it is 1 to ``MAX_WORKERS``)."""
    if ray_address:
        return OnRay(ray_address, workers, ray_retries)
    return InProcess() if workers == 1 else Processes(workers)




@dataclass(frozen=True)
class Shipment:
    """One replication as it travels to a Ray worker: data only, no path on the driver's disk.

    ``name`` is its run folder's name; ``run_files`` are what an unfinished run folder already holds
    (empty for a new run), so the worker resumes it instead of starting again. The scenario's files
    travel beside it (see :func:`run_shipped`).
    """

    name: str
    seed: int
    days: int | None = None
    markets: tuple[str, ...] | None = None
    run_files: dict[str, bytes] = field(default_factory=dict)
    max_cost: float | None = None


def pack_scenario(scenario_path: str) -> dict[str, bytes]:
    """A scenario file and the files it names (catalog, targets), as bytes a worker writes side by side."""
    path = Path(scenario_path)
    scenario, _ = load_scenario(path)
    files = {"catalog.csv": (path.parent / scenario.catalog).read_bytes()}
    if scenario.targets is not None:
        files[TARGETS_FILE] = (path.parent / scenario.targets).read_bytes()
    named = scenario.model_copy(update={"catalog": "catalog.csv",
                                        "targets": TARGETS_FILE if scenario.targets is not None else None})
    files["scenario.yaml"] = dump_scenario(named).encode("utf-8")
    return files


def _folder_files(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file()} if path.is_dir() else {}


def _write_files(folder: Path, files: dict[str, bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        if Path(name).name != name or name in ("", ".", ".."):
            raise ValueError(f"a replication sent back a file named {name!r}, not a plain file name")
        (folder / name).write_bytes(data)


def run_shipped(inputs: dict[str, bytes], job: Shipment) -> dict[str, Any]:
    """Run (or finish) one shipped replication in a private temporary folder on this node.

    ``inputs`` are the scenario's files from :func:`pack_scenario`. Returns its summary (as
    :func:`run_replication`) and, under ``files``, every file of its run folder as bytes (ledger,
    summary, resolved scenario, catalog, cassette if any): the driver writes them into the study's
    folder. Runs in a Ray worker; reads and writes only its own node.
    """
    with tempfile.TemporaryDirectory(prefix="market-replication-") as tmp:
        folder = Path(tmp) / "inputs"
        _write_files(folder, inputs)
        run_dir = Path(tmp) / "runs" / job.name
        if job.run_files:
            _write_files(run_dir, job.run_files)
        result = run_replication(Replication(str(folder / "scenario.yaml"), job.seed, str(run_dir), job.days,
                                             job.markets, job.max_cost))
        result["files"] = _folder_files(run_dir)
    return result


def receive(files: dict[str, bytes], run_dir: Path) -> None:
    """Write a replication's files (from :func:`run_shipped`) as the run folder ``run_dir``, in one step.

    They are written into ``.incoming/`` beside it first, then moved into place, so an interrupted
    driver never leaves a half-written run folder where a study looks for runs.
    """
    incoming = run_dir.parent / ".incoming" / run_dir.name
    shutil.rmtree(incoming, ignore_errors=True)
    _write_files(incoming, files)
    if run_dir.exists():  # an unfinished run the worker resumed: its finished folder replaces it
        shutil.rmtree(run_dir)
    incoming.rename(run_dir)
    with contextlib.suppress(OSError):
        incoming.parent.rmdir()


class OnRay(Workers):
    """Replications as Ray tasks: ``address`` "local" starts Ray here, else "auto" or HOST:PORT.

    Ray is started or joined at the first run and left at ``close`` (unless it was up already).
    Nothing a task does depends on this machine's disk: the scenario and its catalog travel with it
    as bytes (once per scenario, through Ray's object store) and the run folder's files come back
    as bytes, written into each replication's ``run_dir`` here. A finished run folder is not run
    again; an unfinished one travels with its task and is resumed. A task whose worker process or
    node dies is run again up to ``retries`` times; after that it is reported (``complete`` false,
    ``error`` saying why) and the others go on. An error in the run itself is raised, as locally.
    """

    def __init__(self, address: str, workers: int, retries: int = RAY_RETRIES) -> None:
        super().__init__(workers)
        self.address = address
        self.retries = retries
        self._started = False  # whether this object started (or joined) Ray, so closing leaves it

    @property
    def executor(self) -> str:
        """``ray:ADDRESS``."""
        return f"ray:{self.address}"

    def _ray(self) -> Any:
        try:
            import ray
        except ImportError:
            raise ValueError("--ray: Ray is not installed (pip install -e \".[sweep]\")") from None
        if not ray.is_initialized():
            try:
                if self.address == "local":
                    # the raylet gives its metrics agent 15 s to register, then dies, and the node never comes
                    # up: seen here on a loaded 2-core machine (load 15-20); two minutes is what a busy machine needs
                    ray.init(num_cpus=self.workers, include_dashboard=False, log_to_driver=False,
                             _system_config={"agent_register_timeout_ms": 120_000})
                else:
                    ray.init(address=self.address, log_to_driver=False)
            except Exception as exc:  # Ray raises a bare Exception when its node times out starting
                raise ValueError(f"--ray {self.address}: cannot start or reach Ray ({exc})") from None
            self._started = True
        return ray

    def run(self, reps: list[Replication]) -> Iterator[dict[str, Any]]:
        """The replications as Ray tasks, results in the order they finish."""
        ray = self._ray()
        from ray.exceptions import RayError, RayTaskError

        retries = self.retries
        pending: dict[Any, Replication] = {}
        try:
            task = ray.remote(num_cpus=1, max_retries=retries, retry_exceptions=False)(run_shipped)
            scenarios: dict[str, Any] = {}
            for rep in reps:
                run_dir = Path(rep.run_dir)
                if finished(run_dir):
                    yield run_replication(rep)  # only reads its summary
                    continue
                if rep.scenario not in scenarios:
                    scenarios[rep.scenario] = ray.put(pack_scenario(rep.scenario))
                job = Shipment(name=run_dir.name, seed=rep.seed, days=rep.days, markets=rep.markets,
                               run_files=_folder_files(run_dir), max_cost=rep.max_cost)
                pending[task.remote(scenarios[rep.scenario], job)] = rep
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    rep = pending.pop(ref)
                    try:
                        result = ray.get(ref)
                    except RayTaskError:
                        raise  # the run itself failed (bad input, a bug): as in a local process
                    except RayError as exc:  # the worker or its node died, more often than retries allow
                        yield {"seed": rep.seed, "run_dir": rep.run_dir, "complete": False, "skipped": False,
                               "markets": [], "error": f"{type(exc).__name__} after {retries} retries: "
                               f"{' '.join(str(exc).split())[:300]}"}
                        continue
                    receive(result.pop("files"), Path(rep.run_dir))
                    yield result | {"run_dir": rep.run_dir}
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)

    def close(self) -> None:
        """Leave Ray if this object started or joined it."""
        if self._started:
            import ray

            ray.shutdown()
            self._started = False


def after_sweep(sweep_dir: Path) -> None:
    """Run the ``market.after_run`` plugins on the sweep folder (the report pools its runs)."""
    pooled = runner.RunResult(folder=RunFolder(sweep_dir), summary=None, complete=True)
    for ep in sorted(entry_points(group=runner.AFTER_RUN_GROUP), key=lambda e: e.name):
        ep.load()(pooled)


def sweep(
    scenario_path: Path,
    count: int,
    *,
    workers: int = 1,
    ray_address: str | None = None,
    out: Path | None = None,
    root: Path = Path("sweeps"),
    seed: int | None = None,
    days: int | None = None,
    markets: tuple[str, ...] | None = None,
    on_done: Callable[[dict[str, Any]], None] | None = None,
    report: bool = True,
    changes: dict[str, Any] | None = None,
    ray_retries: int = RAY_RETRIES,
    max_cost: float | None = None,
    warn: Callable[[list[str]], None] | None = None,
) -> dict[str, Any]:
    """Run ``count`` replications of a scenario into one sweep folder; returns what sweep.json records.

    ``changes`` (field path -> value, as ``--set PATH=VALUE``) are made to the scenario first; the
    changed scenario is written into the sweep folder and every replication runs it. On Ray, a
    replication whose worker or node dies is run again up to ``ray_retries`` times, then reported
    under ``failed`` (the sweep is then incomplete; the same call with ``out`` runs what is missing).
    With ``max_cost`` each run stops cleanly once its model calls cost that many dollars (the ``--max-cost``
    run hook); the sweep is then incomplete and the same call with ``out`` resumes its stopped runs.
    ``warn`` is given the plan's warnings (budgets that cannot buy anything) before any run starts.
    """
    cost_cap(max_cost)  # a bad cap is bad input before anything runs
    if not 1 <= count <= MAX_REPLICATIONS:
        raise ValueError(f"--replications must be 1 to {MAX_REPLICATIONS:,}, got {count}")
    check_workers(workers)
    # validate everything (scenario, catalog, markets, backends) before writing anything
    changes = dict(changes or {})
    if changes:
        scenario, catalog = load_with(scenario_path, changes, "--set")
        check_runnable(scenario, catalog, "--set")
    else:
        prepared = runner.plan(scenario_path, seed=seed, days=days, markets=markets)
        scenario = prepared.scenario
    base = scenario.seed if seed is None else seed
    sweep_dir = out or root / f"{scenario.name}-{datetime.now():%Y%m%d-%H%M%S}"
    if sweep_dir.exists() and not (sweep_dir / SWEEP_FILE).is_file() and any(sweep_dir.iterdir()):
        raise ValueError(f"--out {sweep_dir}: folder exists, is not empty and is not a sweep folder")
    if (sweep_dir / SWEEP_FILE).is_file():
        before = json.loads((sweep_dir / SWEEP_FILE).read_text(encoding="utf-8")).get("set") or {}
        if canonical(before) != canonical(changes):
            raise ValueError(f"--out {sweep_dir}: that sweep ran with --set {before or 'nothing'}, "
                             f"not {changes or 'nothing'}; choose a new folder")
    sweep_dir.mkdir(parents=True, exist_ok=True)
    if changes:  # the replications run the changed scenario, written beside them
        scenario_path = write_resolved(scenario, Path(scenario_path).parent / scenario.catalog, sweep_dir)
        prepared = runner.plan(scenario_path, seed=seed, days=days, markets=markets)
    if warn is not None:
        warn(prepared.warnings)
    reps = replications(Path(scenario_path), sweep_dir, count, base, prepared.scenario.name, days, markets, max_cost)
    on = open_workers(workers, ray_address, ray_retries)
    record: dict[str, Any] = {
        "scenario": str(scenario_path), "name": prepared.scenario.name, "replications": count,
        "set": changes,
        "seeds": [r.seed for r in reps], "workers": workers, "executor": on.executor, "days": days,
        "markets": list(markets) if markets else None,
        "runs": [Path(r.run_dir).name for r in reps], "started": datetime.now().isoformat(timespec="seconds"),
        "complete": False,
    }
    (sweep_dir / SWEEP_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    started = time.perf_counter()
    results = []
    with on:
        for result in on.run(reps):
            results.append(result)
            if on_done:
                on_done(result)
    record.update(
        complete=all(r["complete"] for r in results) and len(results) == count,
        wall_seconds=round(time.perf_counter() - started, 3),
        deals=[sum(m["deals"] for m in r["markets"]) for r in sorted(results, key=lambda r: r["seed"])],
        skipped=sum(r["skipped"] for r in results),
        failed=[{"run": Path(r["run_dir"]).name, "error": r["error"]} for r in results if "error" in r],
        stopped=sorted(Path(r["run_dir"]).name for r in results if not r["complete"] and "error" not in r),
        sweep_dir=str(sweep_dir),
    )
    (sweep_dir / SWEEP_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    if report and record["complete"]:
        after_sweep(sweep_dir)
    return record


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]})
err = Console(stderr=True)


@app.command()
def main(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML file")],
    replications_: Annotated[int, typer.Option("--replications", "-n", help="how many seeds to run")] = 8,
    workers: Annotated[int, typer.Option(help="local worker processes (or Ray CPUs with --ray local)")] = 1,
    ray: Annotated[str | None, typer.Option("--ray", help="run on Ray: local, auto, or HOST:PORT")] = None,
    out: Annotated[Path | None, typer.Option(help="the sweep folder (default sweeps/<scenario>-<time>)")] = None,
    seed: Annotated[int | None, typer.Option(help="base seed (default: the scenario's); seed i = base + i")] = None,
    days: Annotated[int | None, typer.Option(help="override the number of simulated days")] = None,
    markets: Annotated[str | None, typer.Option(help="only these markets, e.g. B,C")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="change a scenario field for this sweep, PATH=VALUE (repeatable), e.g. "
        "--set participants.budget='$50' --set 'markets[*].tiers.small.share=0.8'")] = None,
    no_report: Annotated[bool, typer.Option("--no-report", help="skip the pooled report")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
    max_cost: MaxCost = None,
) -> None:
    """Run many replications of SCENARIO (seed = base + i), each into its own run folder."""
    console = Console(quiet=quiet)
    only = tuple(m.strip() for m in markets.split(",") if m.strip()) if markets else None
    progress = Progress(TextColumn("[bold]replications"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=console, disable=quiet)
    try:
        changes = {path.text: value for path, value in map(parse_assignment, set_ or [])}
        with progress:
            task = progress.add_task("", total=replications_)
            record = sweep(scenario, replications_, workers=workers, ray_address=ray, out=out, seed=seed, days=days,
                           markets=only, report=not no_report, on_done=lambda _: progress.advance(task),
                           changes=changes, max_cost=max_cost, warn=print_warnings)
    except BAD_INPUT as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        where = f"; continue with the same command and --out {out}" if out else ""
        err.print(f"interrupted{where}", highlight=False)
        raise typer.Exit(130) from None
    deals = record["deals"]
    console.print(f"{len(deals)} replications in {record['wall_seconds']:.1f} s "
                  f"({record['workers']} worker(s), {record['executor']}); deals per replication "
                  f"{min(deals)}-{max(deals)}")
    print_unfinished(record["failed"], record["stopped"], Path(record["sweep_dir"]))
    print(f"sweep folder: {record['sweep_dir']}")
    for line in provenance.closing_lines(Path(record["sweep_dir"])):  # the pooled report and its headline
        print(line)
    if not record["complete"]:
        raise typer.Exit(1)


def print_unfinished(failed: list[dict[str, str]], stopped: list[str], folder: Path) -> None:
    """On stderr, the runs a study lost (``failed``: run and error) and those stopped before their end (e.g. by
    ``--max-cost``), each with how to go on: the same command with ``--out`` of ``folder``."""
    for failure in failed:  # a Ray worker or node died more often than its retries allow
        err.print(f"[red]lost:[/red] {failure['run']}: {failure['error']}; run the same command with --out "
                  f"{folder} to run it again", highlight=False, soft_wrap=True)
    if stopped:  # each stopped run goes on from where it stopped
        err.print(f"stopped: {len(stopped)} run(s) before their end ({', '.join(stopped[:5])}"
                  f"{', ...' if len(stopped) > 5 else ''}); continue with the same command and --out {folder}",
                  highlight=False, soft_wrap=True)


def cli() -> None:
    """Run ``app`` as ``python -m market.sweep``; exits the process with the command's exit code."""
    app(prog_name="python -m market.sweep")


if __name__ == "__main__":
    sys.exit(cli())

