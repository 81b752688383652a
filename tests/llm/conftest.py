"""Fixtures for the model backends: fake APIs on free ports, keys, a run helper."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from market.ledger import Ledger
from running import runner
from running.runfolder import RunFolder
from tests.llm.fakes import FakeAnthropic, FakeModelServer, FakeOpenAI

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "scenarios" / "smoke.yaml"
# small waits so fault runs stay fast: retry backoff 10 ms, retry-after 10 ms
FAST = {"retry_wait": 0.01}


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


@pytest.fixture
def fake_server(keys: None) -> Iterator[Callable[..., FakeModelServer]]:
    """``fake_server("anthropic" | "openai", **options)``: a started fake, stopped after the test."""
    started: list[FakeModelServer] = []

    def make(api: str = "anthropic", **options: Any) -> FakeModelServer:
        server = (FakeAnthropic if api == "anthropic" else FakeOpenAI)(**options).start()
        started.append(server)
        return server

    yield make
    for server in started:
        with contextlib.suppress(OSError):
            server.stop()


def model_tiers(server: FakeModelServer, api: str = "anthropic", **extra: Any) -> dict[str, dict[str, Any]]:
    """Both smoke tiers on ``server``: frontier on Opus 4.5, small on Haiku 4.5 (names as the fake knows them)."""
    url = f"http://127.0.0.1:{server.port}" + ("/v1" if api == "openai" else "")
    opts = {"price": {"input": "5.00", "output": "25.00"}} if api == "openai" else {}
    small = {"price": {"input": "1.00", "output": "5.00"}} if api == "openai" else {}
    return {
        "frontier": {"backend": api, "model": "claude-opus-4-5", "base_url": url, "options": opts, **extra},
        "small": {"backend": api, "model": "claude-haiku-4-5", "base_url": url, "options": small, **extra},
    }


def run_model(
    out: Path, tiers: dict[str, dict[str, Any]], *, options: dict[str, Any] | None = None,
    scenario: Path = SMOKE, on_batch: Any = None,
) -> runner.RunResult:
    """Run ``scenario`` on the given tiers into ``out`` (no after-run report)."""
    prepared = runner.plan(scenario, tiers=tiers, options={**FAST, **(options or {})})
    folder = RunFolder.create(out.parent, "x", exact=out)
    return runner.start(prepared, folder, on_batch=on_batch, after_run=False)  # which closes the policies


def export(run_dir: Path) -> str:
    with Ledger(run_dir / "ledger.sqlite") as ledger:
        return "".join(line + "\n" for line in ledger.export_lines())


def summary(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "summary.json").read_text())
