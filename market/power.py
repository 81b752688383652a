"""``python -m market.power``: a study's power to detect each tier effect (studies.power).

Importing this module imports nothing above the core; running it loads the command through its
``market.commands`` entry point (see :mod:`market.commands`).
"""

from __future__ import annotations

from market.commands import run_module

if __name__ == "__main__":
    run_module("power", "python -m market.power")
