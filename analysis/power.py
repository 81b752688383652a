"""``python -m analysis.power SCENARIO --vary participants=20,40,69,140``: how likely a study detects each tier effect.

For each design point (a value of the varied scenario field) the scenario is run
``--replications`` times (seeds derived as in an experiment), and each run is
tested exactly as the report tests one week: the paired same-item comparisons
and extra deals per person of :func:`analysis.stats.headline` (sign-flip
permutation p-values). The power of an effect at a design point is the share of
runs whose p-value is below ``--alpha``, with a 95% Clopper-Pearson interval.
It measures the design under the scenario's agents: with offline profiles, the
effect sizes are the profiles' assumptions, so the power is too.

It lives in analysis/ (not market/) because it uses the analysis's own tests;
the runs are an ordinary experiment folder (``market.experiment``), resumable.
Writes ``power.parquet`` and ``power.html`` (the curve) into the folder.
"""

from __future__ import annotations

import html
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import plotly.graph_objects as go
import polars as pl
import typer
from scipy import stats as sps

from analysis.load import load_run
from analysis.stats import headline
from market.experiment import ExperimentError, design, run, validate_spec
from market.factors import FactorError, parse_path
from market.sweep import BAD_INPUT

SHORTCUTS = {"participants": "participants.generate.count"}
EFFECT_KEYS = ("seller_premium", "buyer_savings", "extra_deals")


def parse_vary(text: str) -> tuple[str, list[Any]]:
    """``participants=20,40,69`` (or any field path) -> (path, values); numbers stay numbers."""
    name, sep, raw = text.partition("=")
    if not sep or not raw.strip():
        raise FactorError(f"--vary {text!r}: expected NAME=V1,V2,..., e.g. participants=20,40,69,140")
    path = SHORTCUTS.get(name.strip(), name.strip())
    parse_path(path)
    values: list[Any] = []
    for part in raw.split(","):
        part = part.strip()
        values.append(int(part) if re.fullmatch(r"-?\d+", part) else float(part)
                      if re.fullmatch(r"-?\d*\.\d+", part) else part)
    return path, values


def power_table(folder: Path, record: dict[str, Any], path: str, alpha: float) -> pl.DataFrame:
    """Per design point and effect: power (share of runs with p < alpha), its interval, mean estimate."""
    values = {c["id"]: c["values"][path] for c in record["cells"]}
    rows = []
    for entry in record["runs"]:
        data = load_run(folder / entry["run_dir"])
        for key, estimate in zip(EFFECT_KEYS, headline(data, seed=entry["seed"]), strict=True):
            rows.append({"value": values[entry["cell"]], "effect": key, "name": estimate.name, "seed": entry["seed"],
                         "estimate": estimate.value, "p_value": estimate.p_value, "units": estimate.n})
    runs = pl.DataFrame(rows, infer_schema_length=None)
    out = []
    for (value, key, name), part in runs.group_by("value", "effect", "name", maintain_order=True):
        tested = part.filter(pl.col("p_value").is_not_null())
        hits = int((tested["p_value"] < alpha).sum())
        n = tested.height
        low, high = (sps.binomtest(hits, n).proportion_ci(0.95, method="exact") if n else (None, None))
        out.append({path: value, "effect": key, "name": name, "runs": part.height, "tested": n, "detected": hits,
                    "power": hits / n if n else None, "low": None if low is None else float(low),
                    "high": None if high is None else float(high), "mean_estimate": part["estimate"].mean(),
                    "alpha": alpha})
    return pl.DataFrame(out, infer_schema_length=None)


def figure(table: pl.DataFrame, path: str, alpha: float) -> go.Figure:
    """The power curve: one line per effect against the varied field, with 95% intervals."""
    fig = go.Figure()
    for name, part in table.group_by("name", maintain_order=True):
        power = part["power"].to_list()
        fig.add_trace(go.Scatter(
            x=part[path].to_list(), y=power, mode="lines+markers", name=name[0],
            error_y={"type": "data", "symmetric": False,
                     "array": [None if h is None or p is None else h - p for h, p in zip(part["high"], power,
                                                                                        strict=True)],
                     "arrayminus": [None if lo is None or p is None else p - lo
                                    for lo, p in zip(part["low"], power, strict=True)]}))
    label = "participants (people per market)" if path == SHORTCUTS["participants"] else f"{path} (as written)"
    fig.update_layout(title=f"power to detect each tier effect at alpha {alpha:g} (share of runs, 95% interval)",
                      xaxis_title=label, yaxis_title="power (share of runs with p < alpha, 0-1)",
                      yaxis_range=[0, 1.05], height=450, legend={"orientation": "h", "y": -0.25})
    return fig


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]})


@app.command()
def main(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML file")],
    vary: Annotated[str, typer.Option(help="NAME=V1,V2,...: participants=20,40,69,140 or any field path")],
    replications: Annotated[int, typer.Option(help="runs per design point")] = 20,
    alpha: Annotated[float, typer.Option(help="significance level of each run's test")] = 0.05,
    workers: Annotated[int, typer.Option(help="local worker processes")] = 1,
    ray: Annotated[str | None, typer.Option("--ray", help="run on Ray: local, auto, or HOST:PORT")] = None,
    out: Annotated[Path | None, typer.Option(help="folder (default runs/power/<scenario>-<time>)")] = None,
) -> None:
    """Estimate the power of a one-week study to detect each headline tier effect, per design point."""
    try:
        path, values = parse_vary(vary)
        if not 0 < alpha < 1:
            raise ValueError(f"--alpha must be between 0 and 1, got {alpha}")
        spec = validate_spec({"scenario": str(scenario.resolve()), "replications": replications,
                              "factors": {path: values}}, "--vary")
        plan = design(spec, None, scenario.resolve().parent, name=f"power-{scenario.stem}")
        folder = out or Path("runs/power") / f"{scenario.stem}-{datetime.now():%Y%m%d-%H%M%S}"
        record = run(plan, out=folder, workers=workers, ray_address=ray, report=False)
    except (*BAD_INPUT, ExperimentError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    table = power_table(folder, record, path, alpha)
    table.write_parquet(folder / "power.parquet")
    fig = figure(table, path, alpha)
    note = ("<p>Each run is tested as the report tests one week (paired same-item comparisons and extra deals "
            "per person, sign-flip permutation p-values). With offline profiles the effect sizes are the "
            "profiles' assumptions, and so is this power.</p>")
    (folder / "power.html").write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>power</title></head><body>"
        f"<h1>Power: {html.escape(scenario.name)}</h1>{note}{fig.to_html(full_html=False, include_plotlyjs=True)}"
        "</body></html>", encoding="utf-8")
    print(f"{'design point':>14} {'effect':>16} {'power':>6} {'95% interval':>16} {'runs':>5} {'mean estimate':>14}")
    for row in table.iter_rows(named=True):
        interval = "-" if row["low"] is None else f"[{row['low']:.2f}, {row['high']:.2f}]"
        power = "-" if row["power"] is None else f"{row['power']:.2f}"
        print(f"{row[path]!s:>14} {row['effect']:>16} {power:>6} {interval:>16} {row['tested']:>5} "
              f"{row['mean_estimate']:>14,.2f}")
    print(f"power table: {folder / 'power.parquet'}\npower curve: {folder / 'power.html'}")


if __name__ == "__main__":
    app(prog_name="python -m analysis.power")
