"""Shared helpers for the model-backend benchmarks: a fake API in a subprocess, a scenario variant."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]


def start_fake(api: str = "anthropic", latency: float = 0.0, faults: dict[str, int] | None = None,
               slow_seconds: float = 1.0) -> tuple[subprocess.Popen[str], str]:
    """The fake API in its own process (so it does not share the client's GIL); returns (process, base url).

    ``faults``: fault mode -> every how many requests (see tests/llm/fakes.py); its counts are at ``GET /stats``.
    """
    spec = ",".join(f"{mode}={every}" for mode, every in (faults or {}).items())
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.llm.fakes", api, "--latency", str(latency),
         "--faults", spec, "--slow-seconds", str(slow_seconds)],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    return proc, f"http://127.0.0.1:{port}" + ("/v1" if api == "openai" else "")


def variant(base: str, folder: Path, **changes: Any) -> Path:
    """A copy of scenarios/BASE with top-level settings changed (and its catalog beside it)."""
    data = yaml.safe_load((ROOT / "scenarios" / base).read_text())
    data.update(changes)
    data.pop("targets", None)  # a variant is not the published week
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ROOT / "scenarios" / data.get("catalog", "catalog.csv"), folder / "catalog.csv")
    path = folder / base
    path.write_text(yaml.safe_dump(data))
    return path


def model_tiers(url: str) -> dict[str, dict[str, Any]]:
    os.environ.setdefault("ANTHROPIC_API_KEY", "test-key")
    return {
        "frontier": {"backend": "anthropic", "model": "claude-opus-4-5", "base_url": url},
        "small": {"backend": "anthropic", "model": "claude-haiku-4-5", "base_url": url},
    }


def count_batches() -> list[int]:
    """The traders due in each batch the engine runs from now on in this process, appended as it runs
    (``MarketModel._batch`` wrapped: the benchmarks' bound on a run's wall time is per batch)."""
    from market import engine

    batches: list[int] = []
    original = engine.MarketModel._batch

    def counting(self: engine.MarketModel, at: int) -> None:
        batches.append(len({id(t) for t in self._due.get(at, []) if t.next_wake == at}))
        original(self, at)

    engine.MarketModel._batch = counting  # type: ignore[method-assign]
    return batches


def count_requests(batches: list[int]) -> list[int]:
    """The requests sent (every attempt, retries included) during each batch of ``count_batches``'s list, appended
    as it runs (``SdkTransport.send`` wrapped; call after ``count_batches``): a fault's retry is a second round
    trip that any scheduler must also fit in, so the bound of a run with faults counts requests, not calls."""
    from agents.llm.transport import ModelRequest, ModelResponse, SdkTransport

    sent: list[int] = []
    original = SdkTransport.send

    async def counting(self: SdkTransport, request: ModelRequest) -> ModelResponse:
        sent.extend([0] * (len(batches) - len(sent)))
        sent[-1] += 1
        return await original(self, request)

    SdkTransport.send = counting  # type: ignore[method-assign]
    return sent


def loop_lags() -> list[float]:
    """How late (seconds) a 5 ms timer fires on each ``ModelPolicy``'s event loop made from now on in this process,
    appended as it runs (``ModelPolicy.__init__`` wrapped): a loop busy with the client's own work shows here."""
    import asyncio

    from agents.llm.agent import ModelPolicy

    lags: list[float] = []
    original = ModelPolicy.__init__

    async def watch() -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(0.005)
            lags.append(loop.time() - start - 0.005)

    def watching(self: ModelPolicy, context: Any) -> None:
        original(self, context)
        self._loop.call_soon_threadsafe(lambda: self._loop.create_task(watch()))

    ModelPolicy.__init__ = watching  # type: ignore[method-assign]
    return lags


def cpu_seconds(pid: int) -> float | None:
    """User and system CPU seconds of process ``pid`` so far (Linux ``/proc``; None elsewhere)."""
    stat = Path(f"/proc/{pid}/stat")
    if not stat.is_file():
        return None
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def waiting_for_cpu(pid: int) -> float | None:
    """Seconds the threads of process ``pid`` have spent ready to run but waiting for a CPU (Linux
    ``/proc/PID/task/*/schedstat``, its second field; None elsewhere): on a machine whose cores are busy with
    other work, each hop of a call (the client sending, the fake reading, answering, the client reading) waits."""
    tasks = Path(f"/proc/{pid}/task")
    if not tasks.is_dir():
        return None
    return sum(_thread_wait(task) or 0.0 for task in tasks.iterdir())


def _thread_wait(task: Path) -> float | None:
    try:
        return int((task / "schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):  # a thread that ended meanwhile
        return None


def loop_thread_waits() -> list[float]:
    """Seconds each ``ModelPolicy``'s event-loop thread waited for a CPU over its life, appended as the policy is
    closed (``ModelPolicy.close`` wrapped: the thread ends with the policy, and ``waiting_for_cpu`` cannot see a
    thread that has ended)."""
    from agents.llm.agent import ModelPolicy

    waits: list[float] = []
    original = ModelPolicy.close

    def closing(self: ModelPolicy) -> None:
        thread = self._thread
        waited = _thread_wait(Path(f"/proc/{os.getpid()}/task/{thread.native_id}")) if thread.is_alive() else None
        original(self)
        if waited is not None:
            waits.append(waited)

    ModelPolicy.close = closing  # type: ignore[method-assign]
    return waits


def model_waits() -> list[float]:
    """Wall seconds of each ``ModelPolicy.decide_batch`` from now on in this process (the engine waiting for a
    batch's model calls), appended as it runs; the rest of a run's wall time is the engine's own."""
    import time

    from agents.llm.agent import ModelPolicy

    waits: list[float] = []
    original = ModelPolicy.decide_batch

    def timed(self: ModelPolicy, observations: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(self, observations)
        finally:
            waits.append(time.perf_counter() - started)

    ModelPolicy.decide_batch = timed  # type: ignore[method-assign]
    return waits
