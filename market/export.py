"""``python -m market.export``: a run's tables as Parquet or JSON lines (analysis.export).

Importing this module imports nothing above the core; running it loads the command through its
``market.commands`` entry point (see :mod:`market.commands`).
"""

from __future__ import annotations

from market.commands import run_module

if __name__ == "__main__":
    run_module("export", "python -m market.export")
