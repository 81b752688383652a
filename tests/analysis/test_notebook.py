"""notebooks/explore_run.ipynb: saved executed, its figures show without a kernel; it runs against a fresh run."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import plotly.io as pio
import pytest
from nbclient import NotebookClient
from nbconvert.filters import DataTypeFilter

from analysis.notebook import INLINE, NO_BROWSER, show_figures_everywhere
from tests.conftest import BROWSER, ROOT

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "explore_run.ipynb"
PLOTLY = "application/vnd.plotly.v1+json"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _outputs(nb: nbformat.NotebookNode) -> list[dict]:
    return [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]


def test_the_saved_notebook_shows_its_figures_without_a_kernel() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code), "the notebook is saved executed, top to bottom"
    outputs = _outputs(nb)
    assert not [o for o in outputs if o.get("output_type") == "error"]
    plots = [o for o in outputs if PLOTLY in o.get("data", {})]
    assert len(plots) >= 8
    for o in plots:  # interactive where a kernel or JupyterLab runs, a picture everywhere else
        assert base64.b64decode(o["data"]["image/png"])[:8] == PNG_MAGIC
        assert "text/html" not in o["data"]  # an HTML form would win over the picture in previews, and show nothing
    text = "".join(o.get("text", "") for o in outputs)
    assert "not measurements of any model" in text and "Compared: frontier minus small" in text
    # a code host's preview renders like nbconvert, without JavaScript: of each output it shows the first form
    # in nbconvert's order that the output has; for every figure that is the picture
    shown = DataTypeFilter()
    assert all(shown(o["data"])[0] == "image/png" for o in plots)
    assert not re.findall(r"https?://cdn", NOTEBOOK.read_text(encoding="utf-8"))  # nothing fetched from a CDN


@pytest.mark.slow
def test_notebook_executes_against_a_fresh_run(pairs_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a browser every figure also has its picture; without one the notebook says so in one line and every
    figure keeps plotly.js inlined. Either way it runs to the end (kaleido is not started without a browser)."""
    monkeypatch.setenv("MARKET_RUN_DIR", str(pairs_run))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}},
                   ).execute(env=dict(os.environ))
    outputs = _outputs(nb)
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert pairs_run.name in text and "closed" in text
    plots = [o for o in outputs if PLOTLY in o.get("data", {})]
    assert len(plots) >= 8
    if BROWSER is None:
        assert text.count("apt-get install chromium") == 1 and NO_BROWSER in text
        assert all("text/html" in o["data"] and "image/png" not in o["data"] for o in plots)
    else:
        assert all(base64.b64decode(o["data"]["image/png"])[:8] == PNG_MAGIC for o in plots)


def test_without_a_browser_kaleido_is_not_started(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no chromium, chromium-browser, google-chrome, ... on it
    monkeypatch.delenv("BROWSER_PATH", raising=False)
    monkeypatch.setattr(pio.renderers, "default", pio.renderers.default)  # put back after the test
    assert show_figures_everywhere() == NO_BROWSER
    assert pio.renderers.default == INLINE


@pytest.mark.parametrize("browser", ["exit 1", "exec sleep 30"], ids=["dies", "never-answers"])
def test_a_browser_that_fails_or_hangs_leaves_figures_interactive(browser: str, tmp_path: Path) -> None:
    """A broken browser costs at most the time limit, never a hang (also not at the interpreter's exit)."""
    fake = tmp_path / "chromium"
    fake.write_text(f"#!/bin/sh\n{browser}\n", encoding="utf-8")
    fake.chmod(0o755)
    code = "from analysis.notebook import show_figures_everywhere as s; import plotly.io as p; print(s(seconds=3)); " \
           "print(p.renderers.default)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={**os.environ, "BROWSER_PATH": str(fake)})
    assert done.returncode == 0, done.stderr
    said, renderer = done.stdout.splitlines()[-2:]
    assert said.startswith("figures: interactive only, no PNG pictures (") and renderer == INLINE
