"""Fixtures for the watch page: a two-market smoke run, free ports, a real headless Chromium (skipped without)."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from running import runner
from running.runfolder import RunFolder

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "watch"


@pytest.fixture(scope="session")
def two_markets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scenarios/smoke.yaml plus an all-frontier market B (switching market needs two)."""
    folder = tmp_path_factory.mktemp("scenario")
    data = yaml.safe_load((ROOT / "scenarios" / "smoke.yaml").read_text(encoding="utf-8"))
    data["markets"].append({"name": "B", "tiers": {"frontier": 1.0}})
    (folder / "smoke.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    shutil.copyfile(ROOT / "scenarios" / data["catalog"], folder / data["catalog"])
    return folder / "smoke.yaml"


@pytest.fixture(scope="session")
def smoke_run(two_markets: Path, tmp_path_factory: pytest.TempPathFactory) -> RunFolder:
    """A finished two-market smoke run (no report: the page is what is tested)."""
    out = tmp_path_factory.mktemp("runs") / "smoke"
    folder = RunFolder.create(out.parent, "smoke", exact=out)
    result = runner.start(runner.plan(two_markets, run_dir=out), folder, after_run=False)
    assert result.complete
    return folder


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port some other program is listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture
def artifacts() -> Path:
    """Where screenshots go (gitignored; kept after the run for CI to collect)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
