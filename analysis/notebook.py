"""Figures in a notebook that show outside a live kernel too.

A saved notebook is often read where no kernel and no JavaScript runs (a code
host's preview, nbconvert): there a plotly figure saved only as plotly JSON or
as HTML with a script shows nothing. :func:`show_figures_everywhere` makes
every figure shown afterwards carry two forms in one output: the interactive
plotly JSON (JupyterLab, VS Code) and a PNG picture (everything else), drawn by
kaleido in one headless Chrome or Chromium kept for the session.

The browser is looked for first (:func:`find_browser`); without one kaleido is
not started at all, and without kaleido or a browser figures are saved
interactive with plotly.js inlined as HTML (it opens offline wherever scripts
run). Every call into kaleido has a hard time limit, so nothing waits on a
browser that does not answer: past it the figure stays interactive only.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import concurrent.futures
import contextlib
import os
import shutil
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import plotly.graph_objects as go
import plotly.io as pio
from plotly.io.base_renderers import MimetypeRenderer

STATIC = "plotly_mimetype+market_png"
INLINE = "plotly_mimetype+notebook"
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
"""Names of a Chrome or Chromium looked up on PATH (Debian's package is ``chromium``)."""
PICTURE_SECONDS = 60.0
"""Hard limit on one kaleido call (starting the browser and drawing the first picture included)."""
NO_BROWSER = ("figures: interactive only, no PNG pictures for previews without a kernel "
              "(they need Chrome or Chromium: apt-get install chromium)")

T = TypeVar("T")


def find_browser() -> str | None:
    """The Chrome or Chromium kaleido would draw with, or None: the executable named by ``BROWSER_PATH``
    (kaleido's documented override) when set, else the first of :data:`BROWSER_NAMES` found on PATH."""
    override = os.environ.get("BROWSER_PATH")
    found = [override] if override else [shutil.which(name) for name in BROWSER_NAMES]
    return next((p for p in found if p and Path(p).is_file() and os.access(p, os.X_OK)), None)


def _reason(exc: BaseException) -> str:
    """The error's type and the first line of its message, to fit the one line the notebook prints."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:200]}" if lines else type(exc).__name__


class Pictures:
    """One headless browser, driven by kaleido on its own event loop in a daemon thread, kept for the session.

    Every call waits at most ``seconds`` (kaleido's own sync server raises a browser's failure in its thread
    and leaves its caller, and the interpreter's exit, waiting for ever). Raises what kaleido raised, or
    TimeoutError; the first call starts the browser."""

    def __init__(self, browser: str, seconds: float) -> None:
        import kaleido

        self.seconds = seconds
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, name="kaleido", daemon=True).start()
        try:
            self._kaleido = self._call(self._open(kaleido.Kaleido, browser))
        except BaseException:
            self._loop.call_soon_threadsafe(self._loop.stop)
            raise
        atexit.register(self.close)

    async def _open(self, make: Callable[..., Any], browser: str) -> Any:
        drawer = make(path=browser, timeout=self.seconds)
        await drawer.open()
        return drawer

    def _call(self, work: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(work, self._loop)
        try:
            return future.result(timeout=self.seconds)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"the browser gave no answer within {self.seconds:g} s") from None

    def png(self, fig_dict: dict, width: int, height: int) -> bytes:
        """The figure drawn as a PNG picture."""
        return self._call(self._kaleido.calc_fig(fig_dict, opts={"format": "png", "width": width, "height": height}))

    def close(self) -> None:
        """Close the browser (waiting at most ``seconds``) and stop the loop."""
        with contextlib.suppress(Exception):
            self._call(self._kaleido.close())
        self._loop.call_soon_threadsafe(self._loop.stop)


class TimedPng(MimetypeRenderer):
    """A PNG picture of each figure from :class:`Pictures`. A picture that fails or is late is left out (the
    figure keeps its interactive form), one line says so, and later figures are not drawn at all."""

    def __init__(self, pictures: Pictures, width: int, height: int) -> None:
        self.pictures = pictures
        self.width, self.height = width, height
        self.failures: list[str] = []  # shared with the copies plotly makes of this renderer for each figure

    def to_mimebundle(self, fig_dict: dict) -> dict:
        """The PNG form of the figure, or nothing once a picture has failed in this session."""
        if self.failures:
            return {}
        try:
            png = self.pictures.png(fig_dict, self.width, self.height)
        except Exception as exc:  # the interactive form is still saved
            self.failures.append(_reason(exc))
            print(f"figures: no more PNG pictures in this session ({self.failures[0]}); figures stay interactive")
            return {}
        return {"image/png": base64.b64encode(png).decode("ascii")}


def show_figures_everywhere(width: int = 900, height: int = 460, seconds: float = PICTURE_SECONDS) -> str:
    """Choose how figures are saved in this notebook; returns one line saying which and why."""
    browser = find_browser()
    if browser is None:  # kaleido is not started: it would wait for ever for a browser that is not there
        pio.renderers.default = INLINE
        return NO_BROWSER
    try:
        pictures = Pictures(browser, seconds)
        pictures.png(go.Figure().to_dict(), 10, 10)
    except Exception as exc:  # no kaleido, or the browser did not draw: the interactive form is still saved
        pio.renderers.default = INLINE
        return (f"figures: interactive only, no PNG pictures ({_reason(exc)}; "
                "they need the notebook extra and Chrome or Chromium)")
    pio.renderers["market_png"] = TimedPng(pictures, width, height)
    pio.renderers.default = STATIC
    return "figures: interactive (JupyterLab, VS Code) and as PNG pictures (previews without a kernel)"
