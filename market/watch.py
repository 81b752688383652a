"""``python -m market.watch RUN_DIR``: the live page's command line, kept under its old name.

Importing this module imports nothing above the core; running it loads ``watch.cli`` through its
``market.commands`` entry point (see :mod:`market.commands`).
"""

from __future__ import annotations

from market.commands import run_module

if __name__ == "__main__":
    run_module("watch", "python -m market.watch")
