"""``python -m market.run``: run a scenario into a run folder (its command line lives in running.run).

Importing this module imports nothing above the core; running it loads the command through its
``market.commands`` entry point (see :mod:`market.commands`).
"""

from __future__ import annotations

from market.commands import run_module

if __name__ == "__main__":
    run_module("run", "python -m market.run")
