"""The calibration page: ``report.html`` of a ``market.calibrate`` study, with the run report's look.

``python -m analysis.calibration_report STUDY_DIR [--out FILE]`` writes it from the study's
``calibration.json`` (``python -m market.calibrate`` writes it when the study ends). Every number
carries its unit: money in dollars and cents, counts in deals or listings, shares and parameter
importances in percent; whether the held-out runs reach a target is a mark (✓ or ✗) beside the
95% interval it was judged by.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Annotated, Any

import plotly.graph_objects as go
import typer

from analysis import pages
from analysis.pages import Row, Table, figure_html
from market.money import format_money

REPORT_FILE = "report.html"
CALIBRATION_FILE = "calibration.json"
MONEY = {"volume_cents", "seller_premium_cents", "buyer_savings_cents"}
UNITS = {"deals": "deals", "deals_total": "deals", "listings": "listings", "listings_total": "listings",
         "extra_deals_per_person": "deals per person", "fairness_mean": "rating points (1-7)",
         "style_effect": "rating points"}


def amount(statistic: str, value: float | None) -> str:
    """A moment's value with its unit: ``$2.68``, ``186 deals``, ``2.07 deals per person``; ``n/a`` when missing."""
    if value is None or math.isnan(value):
        return "n/a"
    if statistic in MONEY:
        return format_money(round(value))
    unit = UNITS.get(statistic, "")
    number = f"{value:,.0f}" if value == int(value) and abs(value) >= 10 else (
        f"{value:,.1f}" if abs(value) >= 10 else f"{value:,.2f}")
    return f"{number} {unit}".strip()


def interval(statistic: str, low: float | None, high: float | None) -> str:
    """``[$1.76, $2.22]``; ``n/a`` without two runs."""
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return "n/a"
    return f"[{amount(statistic, low)}, {amount(statistic, high)}]"


def mark(row: dict[str, Any]) -> str:
    """✓ reached, ✗ not reached, or why the moment is not simulated."""
    if row["why_not_simulated"]:
        return "not simulated"
    return "✓" if row["reached"] else "✗"


def _number(value: float) -> str:
    return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def history_figure(record: dict[str, Any]) -> go.Figure:
    """The distance of each trial and the best so far (log scale)."""
    trials = [(h["trial"], h["distance"]) for h in record.get("history", []) if h["distance"] is not None]
    xs = [n for n, _ in trials]
    best: list[float] = []
    for _, value in trials:
        best.append(min(value, best[-1]) if best else value)
    fig = go.Figure(go.Scatter(x=xs, y=[v for _, v in trials], mode="markers", name="trial"))
    fig.add_trace(go.Scatter(x=xs, y=best, mode="lines", name="best so far"))
    fig.update_layout(title="distance to the targets per trial", xaxis_title="trial (number)",
                      yaxis_title="distance (weighted squared z, unitless)", yaxis_type="log", height=380)
    return fig


def fit_table(record: dict[str, Any]) -> Table:
    """Each moment: target and tolerance, simulated on held-out seeds, the 95% interval and the mark."""
    head = ["moment", "target", "tolerance", "weight (unitless)", "fitted", "simulated (held out)",
            "95% interval", "reached", "certainty", "source"]
    rows = []
    for row in record["fit"]:
        stat = row["statistic"]
        cells = [row["moment"], amount(stat, row["target"]), f"± {amount(stat, row['tolerance'])}",
                 f"{row['weight']:g}", "yes" if row["fitted"] else "no (shown beside the fit)",
                 "not simulated" if row["why_not_simulated"] else amount(stat, row["simulated"]),
                 "" if row["why_not_simulated"] else interval(stat, row["low"], row["high"]), mark(row),
                 row["certainty"], row["source"]]
        why = row["why_not_simulated"] or ("the target is inside the interval or within the tolerance of the mean"
                                           if row["reached"] else "the target is outside the interval and "
                                           "farther than the tolerance from the mean")
        rows.append(Row(cells, title=why))
    caption = ("Fit: published figures against the simulated week (mean over the held-out seeds, 95% t interval; "
               "✓ reached, ✗ not reached)")
    return Table(head, rows, caption)


def parameter_table(record: dict[str, Any]) -> Table:
    """Each fitted parameter: its best value, its bounds and its fANOVA importance in percent."""
    best = record["best"]["params"]
    importance = record.get("sensitivity", {})
    rows = []
    for p in record["parameters"]:
        share = importance.get(p["path"])
        cells = [p["path"], _number(best[p["path"]]), f"{_number(p['low'])} to {_number(p['high'])}",
                 "whole numbers" if p["integer"] else "real numbers",
                 f"{share:.1%}" if isinstance(share, int | float) else "not estimated"]
        rows.append(cells)
    head = ["parameter", "best value (as written in the scenario)", "bounds", "kind",
            "importance (fANOVA, % of the distance's variance)"]
    return Table.of(head, rows, "Parameters fitted")


def render(record: dict[str, Any]) -> str:
    """The study as one self-contained page (plotly.js inlined)."""
    held = record["holdout_seeds"]
    note = record.get("sensitivity", {}).get("note")
    provenance = [
        f"Targets {record['targets_name']} ({Path(record['targets']).name}); scenario "
        f"{Path(record['scenario']).name}.",
        f"{record['trials']} trials x {record['seeds_per_trial']} seed(s) each ({record['sampler']}); best trial "
        f"{record['best']['trial']}, distance {_number(record['best']['distance'])} (unitless: "
        f"{record['distance']}).",
        f"Simulated values are means over {len(held)} held-out seeds ({held[0]} to {held[-1]}), never used in the "
        "fit, with 95% t intervals.",
        "The offline profiles are modelling assumptions; a calibrated profile reproduces these figures, it does "
        "not measure any model.",
    ]
    return pages.render(
        "calibration.html", title=f"Calibration: {Path(record['scenario']).name}",
        heading=f"Calibration of {Path(record['scenario']).name}", provenance=provenance,
        fit=fit_table(record), parameters=parameter_table(record), sensitivity=note or "",
        figure=figure_html(history_figure(record), include_plotlyjs=True),
    )


def write_page(folder: Path | str, out: Path | None = None) -> Path:
    """Write the page of the study in ``folder`` (from its calibration.json); returns its path."""
    folder = Path(folder)
    source = folder / CALIBRATION_FILE
    if not source.is_file():
        raise ValueError(f"{folder}: not a calibration study folder (no {CALIBRATION_FILE})")
    target = out or folder / REPORT_FILE
    target.write_text(render(json.loads(source.read_text(encoding="utf-8"))), encoding="utf-8")
    return target


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]})


@app.command()
def main(
    folder: Annotated[Path, typer.Argument(help="a calibration study folder (python -m market.calibrate --out)")],
    out: Annotated[Path | None, typer.Option(help="where to write the page (default FOLDER/report.html)")] = None,
) -> None:
    """Write the calibration page of a study."""
    try:
        target = write_page(folder, out)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    print(f"report: {target}")


if __name__ == "__main__":
    app(prog_name="python -m analysis.calibration_report")
