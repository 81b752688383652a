"""``python -m market.experiment``: a scenario across conditions x replications (studies.experiment).

Importing this module imports nothing above the core; running it loads the command through its
``market.commands`` entry point (see :mod:`market.commands`).
"""

from __future__ import annotations

from market.commands import run_module

if __name__ == "__main__":
    run_module("experiment", "python -m market.experiment")
