"""The run folder: where one run keeps its scenario, ledger and outputs.

```
runs/<scenario>-<timestamp>/
  scenario.yaml   the resolved scenario (with the seed)
  catalog.csv     the catalog it was generated from
  ledger.sqlite   every event of every market
  cassette.jsonl  model requests and responses (model backends only)
  summary.json    headline figures per market and tier
  report.html     the analysis report
```
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from market.ledger import LEDGER_FILE
from market.scenario import read_mapping
from running.summary import RunSummary, SummaryError

_SET_UP = ("scenario.yaml", "catalog.csv")  # what a run writes before its ledger


class RunFolderError(ValueError):
    """A path that is not (or not yet) a usable run folder."""


@dataclass(frozen=True)
class RunFolder:
    """One run's folder at ``path`` and the paths of its files (which may not exist yet); see the module's layout."""

    path: Path

    @property
    def scenario(self) -> Path:
        """The resolved scenario, ``scenario.yaml``."""
        return self.path / "scenario.yaml"

    @property
    def catalog(self) -> Path:
        """The catalog the people were drawn from, ``catalog.csv``."""
        return self.path / "catalog.csv"

    @property
    def ledger(self) -> Path:
        """The ledger of every event of every market, ``ledger.sqlite``."""
        return self.path / LEDGER_FILE

    @property
    def summary(self) -> Path:
        """The headline figures, ``summary.json`` (written when the run ends or stops)."""
        return self.path / "summary.json"

    @property
    def report(self) -> Path:
        """The analysis report, ``report.html``."""
        return self.path / "report.html"

    @property
    def cassette(self) -> Path:
        """The recorded model requests and responses, ``cassette.jsonl`` (model backends only)."""
        return self.path / "cassette.jsonl"

    def read_scenario(self) -> dict[str, Any]:
        """The folder's resolved scenario as data (not validated); ``RunFolderError`` naming the file and the
        problem (missing, too large, not YAML, an overlong integer, not a mapping) if it cannot be read."""
        return read_mapping(self.scenario, "scenario", "a mapping of settings", RunFolderError, str(self.scenario))

    def read_summary(self) -> RunSummary | None:
        """The folder's summary.json (None if there is none yet); ``RunFolderError`` naming it if unreadable."""
        if not self.summary.is_file():
            return None
        try:
            return RunSummary.read(self.summary)
        except SummaryError as exc:
            raise RunFolderError(str(exc)) from None

    @classmethod
    def open(cls, path: Path | str) -> RunFolder:
        """An existing run folder; a clear error if ``path`` is not one.

        A folder with its scenario and catalog but no ledger yet (stopped while the ledger
        was being created) is a run folder: resuming it starts the run from the beginning.
        """
        folder = cls(Path(path))
        if not folder.path.is_dir():
            raise RunFolderError(f"{path}: no such folder")
        if not folder.scenario.is_file() and not folder.ledger.is_file():
            raise RunFolderError(f"{path}: not a run folder (missing {folder.scenario.name}, {folder.ledger.name})")
        missing = [p.name for p in (folder.scenario, folder.catalog) if not p.is_file()]
        if missing:
            raise RunFolderError(
                f"{path}: not a run folder (missing {', '.join(missing)}): if it was stopped while it was "
                f"being created, start the run again with --out {path}" if not folder.ledger.is_file() else
                f"{path}: not a run folder (missing {', '.join(missing)})"
            )
        return folder

    @property
    def unstarted(self) -> bool:
        """Whether the folder holds nothing a run recorded: no ledger (a run set up but never started)."""
        return not self.ledger.is_file() and all(
            p.name in _SET_UP or p.name.endswith(".partial") for p in self.path.iterdir()
        )

    @classmethod
    def create(cls, root: Path, name: str, exact: Path | None = None) -> RunFolder:
        """A new, empty run folder: ``exact`` if given, else ``root/<name>-<timestamp>``."""
        if exact is not None:
            if exact.exists() and any(exact.iterdir()):
                if not cls(exact).unstarted:
                    raise RunFolderError(f"{exact}: folder exists and is not empty")
                for leftover in exact.iterdir():  # a run set up but stopped before its ledger existed
                    leftover.unlink()
            exact.mkdir(parents=True, exist_ok=True)
            return cls(exact)
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        path = root / f"{name}-{stamp}"
        n = 1
        while path.exists():
            n += 1
            path = root / f"{name}-{stamp}-{n}"
        path.mkdir(parents=True)
        return cls(path)

    def discard(self) -> None:
        """Delete the folder and everything in it; errors (e.g. already gone) are ignored."""
        shutil.rmtree(self.path, ignore_errors=True)
