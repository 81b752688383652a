"""The HTML pages' one renderer: Jinja2 templates in ``analysis/templates`` and the plain data they show.

Every page (the run report, the experiment report, the calibration page, the power page) extends
``base.html`` (one stylesheet, ``report.css``; a heading and the "what produced these numbers" list)
and draws its tables with the one macro of ``table.html``. Python builds the data: a :class:`Table`
of already formatted text cells, paragraphs as strings, figures as plotly's own HTML fragments.
Autoescaping is on, so every scenario or person's text (market, tier and scenario names, captions,
cells) is escaped by Jinja; the only HTML let through unescaped is plotly's (:func:`figure_html`),
whose figure JSON escapes ``<`` and ``>`` itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import plotly.graph_objects as go
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup


@dataclass(frozen=True)
class Row:
    """One table row: its cells as text (escaped when rendered), a CSS class and a tooltip (both optional)."""

    cells: Sequence[object]
    css: str = ""
    title: str = ""


@dataclass(frozen=True)
class Table:
    """A table as the pages show it: column headings, rows, a caption and a CSS class for the table."""

    headers: Sequence[str]
    rows: Sequence[Row]
    caption: str = ""
    css: str = ""

    @classmethod
    def of(cls, headers: Sequence[str], rows: Sequence[Sequence[object]], caption: str = "") -> Table:
        """A table of plain rows (no class or tooltip per row)."""
        return cls(headers, [Row(cells) for cells in rows], caption)


@cache
def environment() -> Environment:
    """The templates' environment: package data of ``analysis``, autoescaped, undefined names an error."""
    return Environment(loader=PackageLoader("analysis", "templates"), autoescape=True, undefined=StrictUndefined,
                       trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def figure_html(fig: go.Figure, include_plotlyjs: bool, div_id: str | None = None) -> Markup:
    """A plotly figure as plotly writes it into a page (its ``to_html`` fragment); plotly.js inlined if asked."""
    return Markup(fig.to_html(full_html=False, include_plotlyjs=include_plotlyjs, div_id=div_id,
                              config={"displaylogo": False}))


def render(template: str, **context: Any) -> str:
    """The page ``template`` (a file in ``analysis/templates``) rendered with ``context`` as one HTML document."""
    return environment().get_template(template).render(**context)
