"""The self-contained HTML report: headline table, figures and a plain-language summary.

``python -m analysis.report RUN_DIR [RUN_DIR ...] [--out FILE]`` accepts run
folders and sweep folders (every run inside is pooled; intervals are then
taken over replications). ``python -m market.run`` calls :func:`after_run`
at the end of every run. plotly.js is inlined once, so the file opens with no
network.
"""

from __future__ import annotations

import html
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import plotly.graph_objects as go
import polars as pl
import typer

from analysis import efficiency as eff
from analysis import fairness, figures, metrics, stats
from analysis.load import AnalysisError, RunData, expand_runs, load_runs
from market.money import format_money

REPORT_FILE = "report.html"
SKIP_ENV = "MARKET_AFTER_RUN_REPORT"  # "0" skips the per-run report (sweeps write one pooled report)


@dataclass
class Analysis:
    """Everything the report shows, computed from a run's (or runs') tables."""

    data: RunData
    markets: pl.DataFrame
    tiers: pl.DataFrame
    pairs: pl.DataFrame
    efficiency: pl.DataFrame
    surplus: pl.DataFrame
    rated: pl.DataFrame
    fairness: pl.DataFrame
    contrast: tuple[str, str] | None
    headline: list[stats.Estimate] = field(default_factory=list)
    regression: list[stats.Estimate] = field(default_factory=list)
    noticed: list[stats.Estimate] = field(default_factory=list)
    per_run: pl.DataFrame | None = None
    seller_pairs: pl.DataFrame | None = None

    @property
    def replications(self) -> int:
        return len(self.data.runs)


def analyse(data: RunData, seed: int = 0) -> Analysis:
    """Compute every table and estimate of the report (no IO beyond reading stored ratings)."""
    rated = fairness.rated_deals(data, fairness.ratings(data))
    out = Analysis(
        data=data, markets=metrics.market_summary(data), tiers=metrics.tier_summary(data, by_market=True),
        pairs=metrics.tier_pairs(data), efficiency=eff.efficiency(data), surplus=eff.surplus(data), rated=rated,
        fairness=fairness.fairness_by_tier(rated), contrast=None,
    )
    try:
        out.contrast = stats.contrast(data)
    except ValueError:
        return out
    out.seller_pairs = stats.same_item_pairs(data, "seller")
    out.regression = stats.fixed_effects(data)
    if out.replications > 1:
        out.per_run = stats.per_run_headline(data, seed)
        out.headline = stats.across_runs(out.per_run, seed)
        noticed = [{"run": run, **e.as_dict()} for run in data.participants["run"].unique(maintain_order=True)
                   for e in fairness.noticed(stats.subset(data, run), rated.filter(pl.col("run") == run), seed)]
        out.noticed = stats.across_runs(pl.DataFrame(noticed), seed)
    else:
        out.headline = stats.headline(data, seed)
        out.noticed = fairness.noticed(data, rated, seed)
    return out


# --- words ------------------------------------------------------------------------


def _money(cents: float) -> str:
    return "n/a" if cents is None or math.isnan(cents) else format_money(round(cents))


def _interval(e: stats.Estimate) -> str:
    if "cents" in e.name:
        return f"{_money(e.value)} (95% CI {_money(e.low)} to {_money(e.high)})"
    return f"{e.value:.2f} (95% CI {e.low:.2f} to {e.high:.2f})"


def _sure(e: stats.Estimate) -> str:
    if e.p_value is None or math.isnan(e.low):
        return "too few observations to say"
    if e.low > 0 or e.high < 0:
        return f"the interval excludes zero (p = {e.p_value:.2g})"
    return f"the interval includes zero, so this could be chance (p = {e.p_value:.2g})"


def summary_text(a: Analysis) -> list[str]:
    """Plain-language paragraphs; every number comes from ``a``."""
    m = a.markets
    runs = a.replications
    scope = f"{runs} replications" if runs > 1 else "this run"
    deals, volume = int(m["deals"].sum()), int(m["volume_cents"].sum())
    per = f" ({deals / runs:.0f} deals and {_money(volume / runs)} per replication)" if runs > 1 else ""
    lines = [
        f"Across {scope} of scenario “{a.data.name}”, {m['market'].n_unique()} market(s) closed {deals} deals "
        f"worth {_money(volume)} in total{per}; {m['participants'].max()} participants took part in each market."
    ]
    if a.contrast is None:
        lines.append("Only one tier took part, so there is no tier effect to estimate.")
    else:
        top, base = a.contrast
        how = "averaged over replications, with intervals over replications" if runs > 1 else \
            "pairing the same item across markets and the same person across mixed markets"
        seller, buyer, extra = a.headline
        lines.append(
            f"Did the {top} tier get better deals? Sold by a {top} agent, the same item fetched "
            f"{_interval(seller)} more than when a {base} agent sold it; {_sure(seller)}. Bought by a {top} agent it "
            f"cost {_interval(buyer)} less; {_sure(buyer)}. In the markets where tiers mix, a person closed "
            f"{_interval(extra)} more deals when represented by {top}; {_sure(extra)}. ({how}.)"
        )
        if a.regression and not math.isnan(a.regression[0].value):
            s, b = a.regression
            lines.append(
                f"A regression of price on both tiers with item effects agrees: a {top} seller adds "
                f"{_money(s.value)} (95% CI {_money(s.low)} to {_money(s.high)}) and a {top} buyer "
                f"{'pays' if b.value <= 0 else 'adds'} {_money(abs(b.value))} "
                f"{'less' if b.value <= 0 else ''} (95% CI {_money(b.low)} to {_money(b.high)} on the price)."
            )
        if len(a.noticed) == 2 and not math.isnan(a.noticed[1].value):
            gap, rating = a.noticed
            noticed = "and rated their deals less fair" if rating.low > 0 else \
                "but rated their deals about as fair" if rating.low <= 0 <= rating.high else \
                "yet rated their deals fairer"
            lines.append(
                f"Did anyone notice? People represented by {base} earned {_money(gap.value)} less surplus per deal "
                f"(95% CI {_money(gap.low)} to {_money(gap.high)}) {noticed}: the gap in mean fairness rating is "
                f"{rating.value:.2f} points on a 1-7 scale (95% CI {rating.low:.2f} to {rating.high:.2f})."
            )
        sources = a.rated["source"].value_counts().sort("source")
        told = ", ".join(f"{n} {s}" for s, n in sources.iter_rows())
        lines.append(f"Fairness ratings used: {told or 'none'} (simulated ratings are an assumption, not a finding).")
    e = a.efficiency
    if e.height:
        lines.append(
            f"Allocative efficiency (realised gains from trade over the best allocation under the same budgets) "
            f"ranged from {e['efficiency'].min():.1%} to {e['efficiency'].max():.1%} across markets"
            f"{' and replications' if runs > 1 else ''}, mean {e['efficiency'].mean():.1%}."
        )
    return lines


# --- html ------------------------------------------------------------------------


_MONEY_COLUMNS = {"volume_cents", "seller_premium", "buyer_savings", "mean_price_cents", "optimal_cents",
                  "realised_cents", "buyer_surplus", "seller_surplus", "surplus", "mean_surplus"}


def _header(column: str) -> str:
    """A column name as a person reads it: words, and ($) where cents are shown as dollars."""
    words = column.removesuffix("_cents").replace("_", " ")
    return f"{words} ($)" if column in _MONEY_COLUMNS else words


def html_table(df: pl.DataFrame, caption: str = "") -> str:
    """A polars frame as an HTML table; cents columns shown as dollars."""
    head = "".join(f"<th>{html.escape(_header(c))}</th>" for c in df.columns)
    body = []
    for row in df.iter_rows(named=True):
        cells = []
        for col, value in row.items():
            if value is None or (isinstance(value, float) and math.isnan(value)):
                text = "–"
            elif col in _MONEY_COLUMNS:
                text = _money(value)
            elif isinstance(value, float):
                text = str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.3f}"
            else:
                text = str(value)
            cells.append(f"<td>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def estimates_table(estimates: list[stats.Estimate], caption: str) -> str:
    rows = []
    for e in estimates:
        money = "cents" in e.name
        fmt = _money if money else (lambda v: "–" if math.isnan(v) else f"{v:.3f}")
        p = "–" if e.p_value is None else f"{e.p_value:.3g}"
        rows.append({"effect": e.name.replace(" (cents)", ""), "estimate": fmt(e.value), "95% CI low": fmt(e.low),
                     "95% CI high": fmt(e.high), "p": p, "n": e.n, "method": e.method})
    return html_table(pl.DataFrame(rows), caption) if rows else ""


def build_figures(a: Analysis) -> list[go.Figure]:
    figs = [figures.price_by_tier(a.data)]
    if a.contrast is not None and a.seller_pairs is not None:
        figs.append(figures.same_item_slopes(a.data, a.seller_pairs, *a.contrast))
    figs += [
        figures.activity_over_time(a.data),
        figures.surplus_by_tier(a.surplus, a.data.tiers),
        figures.efficiency_by_market(a.efficiency),
        figures.fairness_vs_surplus(a.rated, a.data.tiers),
    ]
    if a.headline:
        figs.append(figures.effects_forest([e.as_dict() for e in a.headline]))
    return figs


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}
td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}
th{background:#f3f3f3}caption{text-align:left;font-weight:600;padding:.3em 0}p{line-height:1.5}
.figure{margin:1.5em 0}"""


def render(a: Analysis) -> str:
    """The report as one HTML document with plotly.js inlined once."""
    figs = build_figures(a)
    parts = [fig.to_html(full_html=False, include_plotlyjs=(k == 0), div_id=f"figure-{k}",
                         config={"displaylogo": False}) for k, fig in enumerate(figs)]
    runs = ", ".join(p.name for p in a.data.runs[:6]) + (" …" if len(a.data.runs) > 6 else "")
    headline = estimates_table(a.headline, "Headline tier effects") + estimates_table(
        a.regression, "Price regression with item fixed effects") + estimates_table(
        a.noticed, "Did the principals notice? (markets where tiers mix)")
    tier_cols = ["market", "tier", "participants", "deals_per_participant", "listings_sold", "price_ratio_as_seller",
                 "price_ratio_as_buyer", "seller_premium", "buyer_savings"]
    tiers = a.tiers.group_by(["market", "tier"]).agg(pl.col(tier_cols[2:]).mean()).sort(["market", "tier"])
    eff_table = a.efficiency.group_by("market").agg(
        pl.col("optimal_cents", "realised_cents").mean(), efficiency=pl.col("efficiency").mean(),
        runs=pl.len()).sort("market")
    body = [
        f"<h1>Market report: {html.escape(a.data.name)}</h1>",
        f"<p><small>{len(a.data.runs)} run(s): {html.escape(runs)}. Money in dollars; computed from the ledgers."
        "</small></p>",
        "<h2>Summary</h2>", *[f"<p>{html.escape(t)}</p>" for t in summary_text(a)],
        "<h2>Headline</h2>", headline,
        html_table(a.markets.group_by("market").agg(
            pl.col("participants", "listings", "deals", "volume_cents", "price_ratio", "deals_per_participant")
            .mean()).sort("market"), "Markets (mean over runs)"),
        html_table(tiers.select(tier_cols), "Per market and tier (seller premium and buyer savings per deal)"),
        html_table(a.pairs, "Seller tier against buyer tier"),
        html_table(eff_table, "Allocative efficiency per market (mean over runs)"),
        html_table(a.fairness, "Fairness ratings against surplus"),
        "<h2>Figures</h2>", *[f'<div class="figure">{p}</div>' for p in parts],
    ]
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>Market report: {html.escape(a.data.name)}</title><style>{_CSS}</style></head><body>"
            + "\n".join(body) + "</body></html>")


def write_report(paths: list[Path], out: Path | None = None) -> Path:
    """Load the runs, analyse them and write the report; returns its path."""
    data = load_runs(paths)
    target = out or (Path(paths[0]) / REPORT_FILE)
    html_text = render(analyse(data))
    tmp = target.with_suffix(".tmp")
    tmp.write_text(html_text, encoding="utf-8")
    tmp.replace(target)
    return target


def after_run(path: Path) -> None:
    """The ``market.after_run`` plugin: store simulated fairness ratings and write report.html.

    ``path`` is a run folder, or a sweep folder (then every run's ratings are
    stored and one pooled report is written into the sweep folder).
    """
    if os.environ.get(SKIP_ENV) == "0":
        return
    try:
        for run_dir in expand_runs([path]):
            fairness.write_simulated(run_dir, load_runs([run_dir]))
        write_report([Path(path)])
    except AnalysisError as exc:  # the run itself is complete and recorded; only the report is missing
        print(f"warning: no report written for {path}: {exc}", file=sys.stderr)
    except Exception as exc:  # a fault in the analysis must not turn a recorded run into a failed one
        print(f"warning: no report written for {path} ({type(exc).__name__}: {exc}); "
              f"see `python -m analysis.report {path}`", file=sys.stderr)


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def main(
    runs: Annotated[list[Path], typer.Argument(help="run folders or sweep folders")],
    out: Annotated[Path | None, typer.Option(help="report file (default: report.html in the first folder)")] = None,
) -> None:
    """Write a self-contained report.html for one or more runs (sweep folders pool their runs)."""
    try:
        expand_runs(runs)
        path = write_report(runs, out)
    except AnalysisError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except OSError as exc:
        typer.echo(f"error: cannot write the report: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"report: {path}")


if __name__ == "__main__":
    app(prog_name="python -m analysis.report")
