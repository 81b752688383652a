"""The calibration page: ``report.html`` of a ``market.calibrate`` study, with the run report's look.

``python -m analysis.calibration_report STUDY_DIR [--out FILE]`` writes it from the study's
``calibration.json`` (``python -m market.calibrate`` writes it when the study ends). Every number
carries its unit: money in dollars and cents, counts in deals or listings, shares and parameter
importances in percent. Each moment shows the published figure with its interval (1.96 published
standard errors, or the declared tolerance), the simulated mean over the held-out seeds with its
95% t interval, and whether it is inside (✓ or ✗) by the rule of ``market.targets.compare`` (the z of
the difference under 1.96, or the tolerance), with the z. The settings table says of every
capability of the tiers' profiles whether it was fitted or held fixed, and why. The ablation table
says what each capability of the small tier, set to the frontier's value, does to each tier gap.
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
from market import targets
from market.money import format_money

REPORT_FILE = "report.html"
CALIBRATION_FILE = "calibration.json"
MONEY = {statistic for statistic, unit in targets.UNITS.items() if unit == "$"}
UNITS = {"deals": "deals", "deals_total": "deals", "listings": "listings", "listings_total": "listings",
         "extra_deals_per_person": "deals per person", "fairness_mean": "rating points (1-7)",
         "fairness_gap": "rating points", "style_effect": "rating points", "items_sold_twice": "items"}


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


def signed(statistic: str, value: float | None) -> str:
    """A change with its sign and unit: ``+$1.20``, ``-0.35 deals per person``; ``n/a`` when missing."""
    if value is None or math.isnan(value):
        return "n/a"
    return ("+" if value >= 0 else "-") + amount(statistic, abs(value))


def mark(row: dict[str, Any]) -> str:
    """✓ inside, ✗ not inside (with the rule that decided), or why the moment is not simulated."""
    if row["why_not_simulated"]:
        return "not simulated"
    if row["inside"] is None:
        return "no value"
    return ("✓ " if row["inside"] else "✗ ") + row["rule"]


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
    """Each moment: published with its interval, simulated on held-out seeds with its interval, inside or not."""
    head = ["moment", "published", "published 95% interval", "uncertainty", "fitted (weight)",
            "simulated (held out)", "simulated 95% interval", "inside", "mean on the fit seeds", "source"]
    rows = []
    for row in record["fit"]:
        stat = row["statistic"]
        spread = (f"SE {amount(stat, row['se'])}" if row.get("se") is not None
                  else f"tolerance ± {amount(stat, row['tolerance'])}")
        simulated = not row["why_not_simulated"]
        cells = [row["moment"], amount(stat, row["target"]),
                 interval(stat, row["published_low"], row["published_high"]), spread,
                 f"yes ({row['weight']:g})" if row["fitted"] and row["weight"] else "no (judged beside the fit)",
                 amount(stat, row["simulated"]) if simulated else "not simulated",
                 interval(stat, row["low"], row["high"]) if simulated else "", mark(row),
                 amount(stat, row.get("fit_mean")) if simulated else "", row["source"]]
        why = row["why_not_simulated"] or (
            "inside: |published - simulated| / sqrt(SE_pub^2 + SE_sim^2) < 1.96 (with a published SE), "
            "else within the declared tolerance")
        rows.append(Row(cells, title=why))
    caption = ("Fit: each published figure against the simulated week (mean over the held-out seeds, 95% t "
               "interval); ✓ inside the combined uncertainty, ✗ not, with the z that decided")
    return Table(head, rows, caption)


def settings_table(record: dict[str, Any]) -> Table:
    """Every capability of the tiers' profiles: fitted (its path) or fixed (the reason), or neither."""
    rows = []
    for row in record.get("settings", []):
        how = "; ".join([*(f"fitted: {p}" for p in row.get("fitted", [])),
                         *(f"fixed ({p}): {why}" for p, why in row.get("fixed", {}).items())]) or row.get("detail", "")
        rows.append(Row([row["profile"], row["setting"], row.get("meaning", ""), row["status"], how],
                        css="miss" if row["status"] == "undeclared" else ""))
    return Table(["profile", "capability", "what it means", "status", "fitted or fixed, and why"], rows,
                 "Every capability of the tiers' profiles, fitted or fixed with its reason (calibration.fixed)")


def ablation_table(record: dict[str, Any]) -> Table | None:
    """Each capability of the small tier set to the frontier's value: each tier gap, and its change from the
    calibrated week (paired by seed, 95% t interval); None when the study ran no ablation."""
    ablation = record.get("ablation")
    if not ablation or not ablation["rows"]:
        return None
    gaps = list(ablation["baseline"])
    statistic = {name: g["statistic"] for name, g in ablation["rows"][0]["gaps"].items()}
    head = ["capability set to the frontier's", "small", "frontier",
            *(f"{name}: value [95%]; change [95%]" for name in gaps)]
    base_cells = ["none (the calibrated week)", "", "",
                  *(f"{amount(statistic[n], b['mean'])} {interval(statistic[n], b['low'], b['high'])}"
                    for n, b in ablation["baseline"].items())]
    rows = [Row(base_cells, css="total")]
    for row in ablation["rows"]:
        cells = [f"{row['name']}: {row['meaning']}", _setting(row["small"]), _setting(row["frontier"])]
        for name in gaps:
            g = row["gaps"][name]
            st = statistic[name]
            cells.append(f"{amount(st, g['mean'])} {interval(st, g['low'], g['high'])}; "
                         f"{signed(st, g['change'])} [{signed(st, g['change_low'])}, {signed(st, g['change_high'])}]")
        rows.append(Row(cells))
    return Table(head, rows, f"Ablation on {ablation['seeds']}: {ablation['note']}")


def _setting(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return " to ".join(_number(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return _number(value) if isinstance(value, int | float) else str(value)


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
    seconds = record.get("wall_seconds", {})
    wall = ", ".join(f"{k} {v / 60:.1f} min" for k, v in seconds.items())
    provenance = [
        f"Targets {record['targets_name']} ({Path(record['targets']).name}); scenario "
        f"{Path(record['scenario']).name}." + (f" Command: {record['command']}" if record.get("command") else ""),
        f"{record['trials']} trials x {record['seeds_per_trial']} seed(s) each ({record['sampler']}); best trial "
        f"{record['best']['trial']}, distance {_number(record['best']['distance'])} (unitless: "
        f"{record['distance']}).",
        f"Simulated values are means over {len(held)} held-out seeds ({held[0]} to {held[-1]}), never used in the "
        "fit, with 95% t intervals; the ablation runs on the same held-out seeds.",
        *([f"Wall time on {record.get('workers', 1)} worker(s): {wall}."] if wall else []),
        "A figure not inside is not reached by this study: its search (the trials above) and the ablation below "
        "are the evidence; neither shows that no setting could reach it.",
        "The offline profiles are modelling assumptions; a calibrated profile reproduces these figures, it does "
        "not measure any model.",
    ]
    return pages.render(
        "calibration.html", title=f"Calibration: {Path(record['scenario']).name}",
        heading=f"Calibration of {Path(record['scenario']).name}", provenance=provenance,
        fit=fit_table(record), parameters=parameter_table(record), settings=settings_table(record),
        ablation=ablation_table(record), sensitivity=note or "",
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
