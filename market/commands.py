"""The module forms of the commands that live above the core (``python -m market.run``, ``studies.sweep`` ...).

The core imports nothing above it. A command whose code lives on a higher floor (a run in ``runs``, studies in
``studies``, the export in ``analysis``, the live page in ``watch``) is reached through its ``market.commands``
entry point, the core's declared way up (as backends are reached through ``market.backends``), so the documented
module forms keep working while every import points down.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib.metadata import entry_points

GROUP = "market.commands"


def command(name: str) -> Callable[..., object]:
    """The object the ``market.commands`` entry point ``name`` names (loaded now).

    Raises ``SystemExit(2)`` with a one-line reason when this installation does not declare it.
    """
    found = list(entry_points(group=GROUP, name=name))
    if not found:
        print(f"error: this installation declares no command {name!r} (an editable install made before it existed "
              "needs: pip install -e . again)", file=sys.stderr)
        raise SystemExit(2)
    return found[0].load()


def run_module(name: str, prog_name: str) -> None:
    """Run the command line ``name`` as ``prog_name`` (what ``python -m market.NAME`` does)."""
    command(name)(prog_name=prog_name)
