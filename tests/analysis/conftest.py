"""Shared fixtures for the analysis tests: real run folders made by the real runner."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from analysis.load import _SCHEMAS, RunData
from running import runner
from running.runfolder import RunFolder

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"

TWO_MARKETS = """\
name: pairs
seed: 11
days: 1
working_hours: {start: 9, end: 17}
timing:
  wake_every_minutes: {min: 30, max: 90}
  reaction_minutes: {min: 5, max: 20}
catalog: catalog.csv
participants:
  generate:
    count: 12
    budget: "$100"
    items_per_person: {min: 3, max: 5}
    wants_per_person: {min: 2, max: 4}
tiers:
  frontier: {backend: offline, profile: frontier}
  small: {backend: offline, profile: small}
markets:
  - {name: A, tiers: {frontier: 1.0}}
  - {name: B, tiers: {frontier: 0.5, small: 0.5}}
  - {name: C, tiers: {frontier: 0.5, small: 0.5}}
"""


def make_run(scenario: Path, out: Path, seed: int | None = None) -> Path:
    """Run ``scenario`` into ``out`` with the real runner (after-run plugins included)."""
    prepared = runner.plan(scenario, seed=seed, run_dir=out)
    runner.start(prepared, RunFolder.create(out.parent, out.name, exact=out))
    return out


def pairs_scenario(folder: Path) -> Path:
    """A three-market, twelve-trader, one-day scenario where the same items meet both tiers."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SCENARIOS / "catalog.csv", folder / "catalog.csv")
    path = folder / "pairs.yaml"
    path.write_text(TWO_MARKETS, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished smoke.yaml run (one market, eight traders, one day)."""
    return make_run(SCENARIOS / "smoke.yaml", tmp_path_factory.mktemp("smoke") / "run")


@pytest.fixture(scope="session")
def pairs_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished three-market run: one all-frontier market and two mixed ones."""
    base = tmp_path_factory.mktemp("pairs")
    return make_run(pairs_scenario(base / "scenario"), base / "run")


@pytest.fixture
def copy_run(tmp_path: Path):
    """Copy a run folder into tmp_path so a test may damage it."""

    def copy(src: Path) -> Path:
        dst = tmp_path / src.name
        shutil.copytree(src, dst)
        return dst

    return copy


def synthetic(deals: list[dict], tiers: dict[tuple[str, str], str] | None = None) -> RunData:
    """A RunData holding only the given deals (and participants with the given tiers)."""
    frames = {name: pl.DataFrame(schema=schema) for name, schema in _SCHEMAS.items()}
    frames["deals"] = pl.DataFrame(deals)
    people = [{"run": "r", "market": m, "participant_id": p, "name": p, "tier": t, "budget": 10_000, "items": 0,
               "wants": 0} for (m, p), t in (tiers or {}).items()]
    if people:
        frames["participants"] = pl.DataFrame(people, schema=_SCHEMAS["participants"])
    return RunData(path=Path("."), name="synthetic", seed=0, scenario={}, tiers=["frontier", "small"],
                   hourly=pl.DataFrame(), runs=[], **frames)
