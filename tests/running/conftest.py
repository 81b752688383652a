"""Fixtures shared with the analysis tests: finished runs to read (built once per session)."""

from tests.analysis.conftest import pairs_run, smoke_run

__all__ = ["pairs_run", "smoke_run"]
