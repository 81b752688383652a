"""`pip install -e .` (no extras) must run the main job: nothing on its path may need an extra."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

EXTRAS = ["anthropic", "openai", "tenacity", "aiolimiter", "slack_bolt", "slack_sdk", "aiohttp", "ray",
          "nbclient", "nbformat", "ipykernel", "playwright", "hypothesis", "pytest"]

BLOCKER = f"""
import importlib.abc, sys
class _NoExtras(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {EXTRAS!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (an extra that is not installed)", name=name)
        return None
sys.meta_path.insert(0, _NoExtras())
"""


def test_the_main_job_runs_without_any_extra(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(BLOCKER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "market.run", str(ROOT / "scenarios" / "smoke.yaml"), "--out", str(out), "--quiet"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert {"ledger.sqlite", "summary.json", "report.html"} <= {p.name for p in out.iterdir()}
