"""The engine stays below its front ends: ``market`` imports nothing from agents, analysis, slackbot or watch.

Checked twice: statically (every import statement that runs when a module of
``market`` loads, i.e. outside function bodies) and by importing every module
of ``market`` in a fresh interpreter. Front ends are imported only inside the
function that needs them (``market run --watch``, ``market report`` ...).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

ABOVE = ("agents", "analysis", "slackbot", "watch")


def load_time_imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of each import that runs when ``path`` is imported (function bodies excluded)."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            return
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
            if name in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
                found.append((node.lineno, str(node.args[0].value)))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    return found


def test_load_time_imports_of_market_stay_in_the_engine() -> None:
    files = sorted((ROOT / "market").rglob("*.py"))
    assert len(files) > 10
    bad = [f"{path.relative_to(ROOT)}:{line} imports {module}"
           for path in files for line, module in load_time_imports(path) if module.split(".")[0] in ABOVE]
    assert bad == []


def test_the_checker_sees_what_it_must(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import analysis.report\nfrom watch import live\nif True:\n    import agents\n"
                      "class C:\n    import slackbot\n"
                      "def f():\n    import analysis\n    from watch.live import LiveServer\n", encoding="utf-8")
    assert [m for _, m in load_time_imports(sample)] == ["analysis.report", "watch", "agents", "slackbot"]


@pytest.mark.slow
def test_importing_every_market_module_loads_no_front_end() -> None:
    code = ("import pkgutil, sys, importlib, market\n"
            "names = [m.name for m in pkgutil.walk_packages(market.__path__, 'market.')\n"
            "         if not m.name.endswith('__main__')]\n"
            "for name in names:\n    importlib.import_module(name)\n"
            f"print(len(names), sorted(m for m in sys.modules if m.split('.')[0] in {ABOVE!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    count, loaded = out.stdout.strip().split(" ", 1)
    assert int(count) > 10
    assert loaded == "[]"
