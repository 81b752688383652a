"""Compare the cells of an experiment: each headline tier effect per cell, with its interval, against each factor.

``python -m analysis.experiment_report EXPERIMENT_DIR [--out report.html]`` (also run by
``python -m market.experiment`` when its runs are done, as a ``market.after_experiment`` plugin)
writes into the experiment folder:

- ``effects.parquet``: every run's headline effects, for every pair of tiers compared (the
  scenario's ``compare:``, else every pair in the scenario's order, the first named measured
  against the second): the same item
  sold (bought) by one tier against the other, paired within the run (cents), and extra deals
  per person between the tiers in markets where tiers mix;
- ``cells.parquet``: per cell and effect, the mean over replications with a 95% t interval;
- ``report.html``: what produced the numbers, then for each effect its estimate and interval
  per cell plotted against each factor, and the table of cells. One self-contained file.
"""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import plotly.graph_objects as go
import polars as pl
import typer
from plotly.subplots import make_subplots
from scipy import stats as sps

from analysis import pages
from analysis.load import load_run
from analysis.pages import Table, figure_html
from analysis.stats import comparisons, person_pairs, same_item_pairs
from market.money import format_money
from market.scenario import read_mapping, validate_scenario
from running.provenance import describe_tier

EXPERIMENT_FILE = "experiment.json"
EFFECTS = (
    # kind, name template, unit
    ("seller_premium", "seller premium: same item sold by {a} vs {b}", "cents"),
    ("buyer_savings", "buyer savings: same item bought by {a} vs {b}", "cents"),  # shown in dollars in the report
    ("extra_deals", "extra deals per person as {a} vs {b} (mixed markets)", "deals per person"),
)


@dataclass(frozen=True)
class Experiment:
    """An experiment folder's record (experiment.json) and where it is."""

    folder: Path
    record: dict[str, Any]

    @classmethod
    def open(cls, folder: Path | str) -> Experiment:
        """The experiment in ``folder``; ``ValueError`` when it has no experiment.json or the file is not JSON."""
        folder = Path(folder)
        path = folder / EXPERIMENT_FILE
        if not path.is_file():
            raise ValueError(f"{folder}: not an experiment folder (no {EXPERIMENT_FILE})")
        return cls(folder, json.loads(path.read_text(encoding="utf-8")))

    @property
    def factors(self) -> dict[str, list[Any]]:
        """Each factor's name and the values it takes, as the record lists them."""
        return self.record["factors"]

    def cell_values(self, cell: str) -> dict[str, Any]:
        """The factor values of cell ``cell`` (its id); ``StopIteration`` when there is no such cell."""
        return next(c["values"] for c in self.record["cells"] if c["id"] == cell)


def run_effects(data: Any) -> list[dict[str, Any]]:
    """One run's headline effects for every pair of tiers compared, one value each.

    The pairs are the analysis's (:func:`analysis.stats.comparisons`): the scenario's ``compare:``
    in its order, else every pair of the tiers that took part in the order the scenario defines them.
    """
    rows = []
    for pair in comparisons(data):
        a, b = pair
        sold = same_item_pairs(data, "seller", pair)["diff"]
        bought = same_item_pairs(data, "buyer", pair)["diff"]
        deals = person_pairs(data, pair)["diff"]
        for (kind, template, unit), values in zip(EFFECTS, (sold, -bought, deals), strict=True):
            rows.append({"effect": kind, "top": a, "base": b, "name": template.format(a=a, b=b), "unit": unit,
                         "value": float(values.mean()) if values.len() else None, "units": values.len()})
    return rows


def effects_table(experiment: Experiment) -> pl.DataFrame:
    """Every run's headline effects with its cell, replication, seed and the cell's factor values."""
    rows = []
    for entry in experiment.record["runs"]:
        run_dir = experiment.folder / entry["run_dir"]
        data = load_run(run_dir)
        values = experiment.cell_values(entry["cell"])
        for effect in run_effects(data):
            rows.append({"cell": entry["cell"], "replication": entry["replication"], "seed": entry["seed"],
                         "run": run_dir.name, **{f: _text(values.get(f)) for f in experiment.factors}, **effect})
    return pl.DataFrame(rows, infer_schema_length=None)


def cell_estimates(effects: pl.DataFrame, factors: list[str]) -> pl.DataFrame:
    """Per cell and effect: mean over replications, 95% t interval, number of replications."""
    rows = []
    keys = ["cell", *factors, "effect", "top", "base", "name", "unit"]
    for group, part in effects.group_by(keys, maintain_order=True):
        values = part["value"].drop_nulls().drop_nans().to_numpy()
        mean, low, high, method = _t_interval(values)
        rows.append({**dict(zip(keys, group, strict=True)), "estimate": mean, "low": low, "high": high,
                     "replications": int(values.size), "method": method})
    return pl.DataFrame(rows, infer_schema_length=None)


def _t_interval(values: np.ndarray) -> tuple[float | None, float | None, float | None, str]:
    if values.size == 0:
        return None, None, None, "no replication had units for this effect"
    mean = float(values.mean())
    if values.size < 2:
        return mean, None, None, "one replication: no interval"
    half = float(sps.t.ppf(0.975, values.size - 1) * values.std(ddof=1) / math.sqrt(values.size))
    return mean, mean - half, mean + half, "mean over replications; 95% t interval"


# --- the report ---------------------------------------------------------------------------


def unit_of(path: str, levels: list[Any]) -> str:
    """The unit of a factor, for its axis."""
    last = path.rsplit(".", 1)[-1]
    if last == "share" or re.fullmatch(r"markets\[[^\]]+\]\.tiers\.[A-Za-z0-9_-]+", path):
        return "share of participants, 0-1"
    if levels and all(isinstance(v, str) and v.strip().startswith("$") for v in levels):
        return "dollars"
    if any(word in last for word in ("budget", "price", "ask", "reserve")):
        return "cents"
    if last in ("days",):
        return "days"
    if last.endswith("_hours"):
        return "hours"
    if last.endswith("_minutes"):
        return "minutes"
    if last in ("offer_ttl",):
        return "seconds"
    return "as written in the scenario"


def provenance(experiment: Experiment) -> list[str]:
    """The first lines of the report: what produced its numbers (each tier described as every report and the
    terminal describe it, :func:`running.provenance.describe_tier`)."""
    record = experiment.record
    tiers: dict[str, set[str]] = {}
    days: set[int] = set()
    people: set[str] = set()
    budgets: set[str] = set()
    offline = False
    for cell in record["cells"]:
        scenario = validate_scenario(read_mapping(experiment.folder / cell["scenario"], "scenario",
                                                  "a mapping of settings"), cell["scenario"])
        days.add(scenario.days)
        generate, listed = scenario.participants.generate, scenario.participants.people
        people.add(str((generate.count if generate else 0) + len(listed)))
        budgets.update(format_money(b) for b in [*([generate.budget] if generate else []), *(p.budget for p in listed)])
        for name, tier in scenario.tiers.items():
            offline = offline or tier.backend == "offline"
            tiers.setdefault(name, set()).add(describe_tier(scenario, name))
    cells, reps = len(record["cells"]), record["replications"]
    lines = [
        f"Experiment {record['name']}: {cells} cell(s) x {reps} replication(s) of {Path(record['scenario']).name} "
        f"({len(record['runs'])} runs).",
        "Tiers: " + "; ".join(f"{t}: {', '.join(sorted(w))}" for t, w in tiers.items()) + ".",
        f"Seeds: {record['seeds']}, base {record['base_seed']} (each run's seed is in effects.parquet and "
        "experiment.json).",
        f"Participants: {', '.join(sorted(people))} per market; budgets: {', '.join(sorted(budgets))}; "
        f"days: {', '.join(map(str, sorted(days)))}.",
        "Factors: " + ("; ".join(f"{p} = {', '.join(map(_text, v))}" for p, v in experiment.factors.items())
                       or "none (one cell)") + ".",
    ]
    lines += tier_change_lines(record)
    if record.get("set"):
        lines.append("Set in every cell: " + ", ".join(f"{k} = {_text(v)}" for k, v in record["set"].items()) + ".")
    if offline:
        lines.append("Tiers running offline profiles differ only as their profiles are written: differences "
                     "between them are modelling assumptions of those profiles, not measurements of any model.")
    lines.append("Intervals: 95% t intervals over replications of each run's paired estimate.")
    return lines


def tier_change_lines(record: dict[str, Any]) -> list[str]:
    """One line per cell whose markets hold other tiers than the base scenario's, naming each market."""
    changed = [c for c in record["cells"] if c.get("tier_changes")]
    if not changed:
        return []
    lines = [f"Changes tiers: {len(changed)} of {len(record['cells'])} cell(s) change which tiers a market holds "
             f"(against {Path(record['scenario']).name}); markets that gain or lose a tier are no longer the "
             "scenario's controls:"]
    lines += [f"{c['id']} ({c['label']}): " + "; ".join(t["text"] for t in c["tier_changes"]) + "."
              for c in changed]
    return lines


def figure(cells: pl.DataFrame, effect: str, experiment: Experiment) -> go.Figure:
    """One effect: its estimate and interval per cell, one panel per factor (other factors as colours)."""
    part = cells.filter(pl.col("name") == effect)
    factors = list(experiment.factors)
    unit = part["unit"][0]
    panels = factors or ["cell"]
    fig = make_subplots(rows=1, cols=len(panels), shared_yaxes=True, horizontal_spacing=0.08)
    for col, factor in enumerate(panels, start=1):
        others = [f for f in factors if f != factor]
        order = [_text(v) for v in experiment.factors.get(factor, [])] or part["cell"].to_list()
        groups = part.group_by(others, maintain_order=True) if others else [((), part)]
        for key, group in groups:
            group = group.with_columns(_x=pl.col(factor).replace_strict(
                {v: i for i, v in enumerate(order)}, default=None)).sort("_x")
            label = ", ".join(f"{f}={v}" for f, v in zip(others, key, strict=True)) or "all cells"
            estimate = group["estimate"].to_list()
            fig.add_trace(go.Scatter(
                x=group[factor].to_list(), y=estimate, mode="lines+markers", name=label, legendgroup=label,
                error_y={"type": "data", "symmetric": False,
                         "array": [None if h is None or e is None else h - e
                                   for h, e in zip(group["high"].to_list(), estimate, strict=True)],
                         "arrayminus": [None if lo is None or e is None else e - lo
                                        for lo, e in zip(group["low"].to_list(), estimate, strict=True)]},
                customdata=group.select("cell", "replications").rows(),
                hovertemplate="cell %{customdata[0]}: %{y:,.2f} (" + unit + ", n=%{customdata[1]})<extra></extra>",
            ), row=1, col=col)
        unit_x = unit_of(factor, experiment.factors.get(factor, []))
        fig.update_xaxes(title_text=f"{factor} ({unit_x})", type="category", categoryorder="array",
                         categoryarray=order, row=1, col=col)
    fig.update_yaxes(title_text=f"estimate ({unit})", row=1, col=1, zeroline=True)
    fig.add_hline(y=0, line={"color": "#999", "width": 1, "dash": "dot"})
    fig.update_layout(title=f"{effect}: estimate and 95% interval per cell", height=420,
                      legend={"orientation": "h", "y": -0.3}, margin={"t": 60, "b": 40})
    return fig


def in_dollars(cells: pl.DataFrame) -> pl.DataFrame:
    """Effects in cents shown in dollars (the tables on disk keep cents)."""
    cents = pl.col("unit") == "cents"
    return cells.with_columns(
        *[pl.when(cents).then(pl.col(c) / 100).otherwise(pl.col(c)).alias(c) for c in ("estimate", "low", "high")],
        unit=pl.when(cents).then(pl.lit("dollars")).otherwise(pl.col("unit")),
    )


def render(experiment: Experiment, cells: pl.DataFrame) -> str:
    """The report as one self-contained HTML page (plotly.js inlined once), with the run report's look."""
    cells = in_dollars(cells)
    name = experiment.record["name"]
    figures = [figure_html(figure(cells, effect, experiment), include_plotlyjs=k == 0)
               for k, effect in enumerate(cells["name"].unique(maintain_order=True).to_list())]
    return pages.render("experiment.html", title=f"experiment {name}",
                        heading=f"Experiment {name}: tier effects across cells", provenance=provenance(experiment),
                        figures=figures, cells=cells_table(cells, list(experiment.factors)))


def cells_table(cells: pl.DataFrame, factors: list[str]) -> Table:
    """Per cell and effect: the factors' values, the estimate, its 95% interval and the replications."""
    rows = []
    for row in cells.iter_rows(named=True):
        money = row["unit"] == "dollars"
        interval = "-" if row["low"] is None else f"{_num(row['low'], money)} to {_num(row['high'], money)}"
        rows.append([row["cell"], *[row[f] for f in factors], row["name"], _num(row["estimate"], money), interval,
                     row["replications"]])
    return Table.of(["cell", *factors, "effect", "estimate", "95% interval", "replications"], rows)


def _num(value: float | None, money: bool = False) -> str:
    """A number for people: dollars as $1,234.50 (minus sign in front), others to 2 significant decimals."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if money:
        return f"{'-' if value < 0 else ''}${abs(value):,.2f}"
    return f"{value:,.1f}" if abs(value) >= 10 else f"{value:,.2f}"


def _text(value: Any) -> str:
    if value is None:
        return "(scenario's)"
    return value if isinstance(value, str) else json.dumps(value)


def write(folder: Path | str, out: Path | None = None) -> Path:
    """Write effects.parquet, cells.parquet and the report for an experiment folder; returns the report."""
    experiment = Experiment.open(folder)
    effects = effects_table(experiment)
    effects.write_parquet(experiment.folder / "effects.parquet")
    cells = cell_estimates(effects, list(experiment.factors))
    cells.write_parquet(experiment.folder / "cells.parquet")
    target = out or experiment.folder / "report.html"
    target.write_text(render(experiment, cells), encoding="utf-8")
    return target


def after_experiment(folder: Path) -> None:
    """The ``market.after_experiment`` plugin: estimates per cell and the report."""
    write(folder)


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]})


@app.command()
def main(
    folder: Annotated[Path, typer.Argument(help="an experiment folder (python -m market.experiment --out)")],
    out: Annotated[Path | None, typer.Option(help="where to write the report (default FOLDER/report.html)")] = None,
) -> None:
    """Write the per-cell estimates and the cross-cell report of an experiment."""
    try:
        target = write(folder, out)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    print(f"report: {target}")


if __name__ == "__main__":
    app(prog_name="python -m analysis.experiment_report")
