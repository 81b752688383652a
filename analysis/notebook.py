"""Figures in a notebook that show outside a live kernel too.

A saved notebook is often read where no kernel and no JavaScript runs (a code
host's preview, nbconvert): there a plotly figure saved only as plotly JSON or
as HTML with a script shows nothing. :func:`show_figures_everywhere` makes
every figure shown afterwards carry two forms in one output: the interactive
plotly JSON (JupyterLab, VS Code) and a PNG picture (everything else), drawn by
kaleido in one headless Chrome or Chromium kept for the session. Without
kaleido or a browser, figures are saved interactive with plotly.js inlined as
HTML (it opens offline wherever scripts run), and the reason is returned.
"""

from __future__ import annotations

import warnings

import plotly.graph_objects as go
import plotly.io as pio

STATIC = "plotly_mimetype+png"
INLINE = "plotly_mimetype+notebook"


def show_figures_everywhere(width: int = 900, height: int = 460) -> str:
    """Choose how figures are saved in this notebook; returns a sentence saying which and why."""
    try:
        import kaleido

        kaleido.start_sync_server(silence_warnings=True)
        warnings.filterwarnings("ignore", message="The kopts argument is ignored")
        pio.to_image(go.Figure(), format="png", width=10, height=10)
    except Exception as exc:  # no kaleido, or no Chrome/Chromium for it: the interactive form is still saved
        pio.renderers.default = INLINE
        return (f"figures: interactive, with plotly.js inlined (no PNG pictures: {type(exc).__name__}: {exc}; "
                "install the notebook extra and Chrome or Chromium for pictures that show in any preview)")
    png = pio.renderers["png"]
    png.width, png.height = width, height
    pio.renderers.default = STATIC
    return "figures: interactive (JupyterLab, VS Code) and as PNG pictures (previews without a kernel)"
