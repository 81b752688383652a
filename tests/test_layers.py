"""Every import points down a floor: the core below runs, analysis, agents, studies, the edges and the command.

Read statically from every import statement in the tree (function bodies and other lazy imports included, and
``import_module``/``__import__`` of a constant name), and checked again by importing every core module in a fresh
interpreter. Plugin entry points (``market.backends``, ``market.commands``, ``market.after_run`` ...) are the only
declared way up; ARCHITECTURE.md draws the floors.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

FLOORS: dict[str, int] = {
    "market": 0,    # the core: money, domain, actions, events, exchange, state, observation, ports, engine, ledger
    "running": 1,   # plan / start / resume a run folder, the live run, the run summary, run hooks
    "analysis": 2,  # load, tables, metrics, statistics, export, provenance, reports
    "agents": 3,    # offline and model policies (the survey reads runs through the analysis)
    "studies": 4,   # sweeps, experiments, calibration, power
    "watch": 5,     # edges: the live page ...
    "slackbot": 5,  # ... and the Slack bot
    "cli": 6,       # the `market` command
}


def imports_of(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every import in ``path``, wherever it stands (lazy ones in function bodies too)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
            if name in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
                found.append((node.lineno, str(node.args[0].value)))
    return found


def upward_imports(root: Path) -> list[str]:
    """Every import in the packages under ``root`` that points to a higher floor, as ``path:line imports module``."""
    bad = []
    for package, floor in FLOORS.items():
        for path in sorted((root / package).rglob("*.py")):
            for line, module in imports_of(path):
                target = FLOORS.get(module.split(".")[0])
                if target is not None and target > floor:
                    bad.append(f"{path.relative_to(root)}:{line} imports {module}")
    return bad


def test_every_import_points_down() -> None:
    assert sum(1 for package in FLOORS for _ in (ROOT / package).rglob("*.py")) > 50
    assert upward_imports(ROOT) == []


def test_the_checker_sees_what_it_must(tmp_path: Path) -> None:
    (tmp_path / "market").mkdir()
    (tmp_path / "market" / "sample.py").write_text(
        "import analysis.report\nfrom watch import live\nif True:\n    import agents\n"
        "class C:\n    import slackbot\n"
        "def f():\n    import running.run\n    from market.money import Money\n"
        "    importlib.import_module('studies.sweep')\n", encoding="utf-8")
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "fine.py").write_text("import running\nfrom analysis import load\nimport market\n",
                                                  encoding="utf-8")
    assert [line.split(" imports ")[1] for line in upward_imports(tmp_path)] == [
        "analysis.report", "watch", "agents", "slackbot", "running.run", "studies.sweep"]


@pytest.mark.slow
def test_importing_every_core_module_loads_nothing_above_it() -> None:
    above = tuple(name for name, floor in FLOORS.items() if floor > 0)
    code = ("import pkgutil, sys, importlib, market\n"
            "names = [m.name for m in pkgutil.walk_packages(market.__path__, 'market.')\n"
            "         if not m.name.endswith('__main__')]\n"
            "for name in names:\n    importlib.import_module(name)\n"
            f"print(len(names), sorted(m for m in sys.modules if m.split('.')[0] in {above!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    count, loaded = out.stdout.strip().split(" ", 1)
    assert int(count) > 10
    assert loaded == "[]"
