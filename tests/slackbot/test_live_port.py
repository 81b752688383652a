"""The edges (the Slack bot, the live page) use the live run through its port only.

Read from the source (AST): nothing in ``slackbot/`` or ``watch/`` imports the engine, reaches a
model, its traders, their policies, its DataCollector or its stop flag, or any other object's
private attributes. What they need is on ``running.live.LiveMarket`` (follow, join, submit,
set_policy, agent, snapshot).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EDGES = ("slackbot", "watch")
ENGINE_NAMES = {"model", "traders", "datacollector", "stop_requested", "policy"}


def _reaches(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [f"{path.name}:{node.lineno} imports {n}" for n in names if n.startswith("market.engine")]
        elif isinstance(node, ast.Attribute):
            private = node.attr.startswith("_") and not node.attr.startswith("__")
            own = isinstance(node.value, ast.Name) and node.value.id in ("self", "cls", "outer")
            if node.attr in ENGINE_NAMES or (private and not own):
                found.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
    return found


def test_the_edges_reach_nothing_of_the_engine() -> None:
    files = [p for edge in EDGES for p in sorted((ROOT / edge).rglob("*.py"))]
    assert len(files) > 20
    assert [hit for path in files for hit in _reaches(path)] == []


def test_the_scan_sees_what_it_forbids(tmp_path: Path) -> None:
    reaching = tmp_path / "reaching.py"
    reaching.write_text("from market.engine import MarketModel\n"
                        "def f(model, run):\n"
                        "    model.market('A').traders['p'].policy = None\n"
                        "    return model.datacollector, run._ledger, self.model\n", encoding="utf-8")
    hits = " | ".join(_reaches(reaching))
    for reach in ("imports market.engine", ".traders", ".policy", "model.datacollector", "run._ledger", "self.model"):
        assert reach in hits, reach
