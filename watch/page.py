"""The dashboard page: ``static/page.html`` with its ``page.css``, ``page.js`` and plotly.js inlined.

The three files are package data (``watch/static``), edited as HTML, CSS and
JavaScript. They are put together into one self-contained document, so the
page opens with no network and nothing else to fetch.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import plotly

STATIC = resources.files("watch") / "static"


def _static(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


def _inline_script(text: str) -> str:
    """``text`` made safe inside ``<script>``: no early ``</script`` end tag."""
    return text.replace("</script", "<\\/script")


def page_html() -> bytes:
    """The whole page as UTF-8: the HTML with the CSS, the page's script and plotly.js in place."""
    plotly_js = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_text(encoding="utf-8")
    parts = {
        "<style>/*PAGE_CSS*/</style>": f"<style>\n{_static('page.css')}</style>",
        "<script>/*PLOTLY_JS*/</script>": f"<script>{_inline_script(plotly_js)}</script>",
        "<script>/*PAGE_JS*/</script>": f"<script>\n{_inline_script(_static('page.js'))}</script>",
    }
    html = _static("page.html")
    for placeholder, content in parts.items():
        if html.count(placeholder) != 1:
            raise RuntimeError(f"watch/static/page.html must hold {placeholder} exactly once")
        html = html.replace(placeholder, content)
    return html.encode("utf-8")
