"""The self-contained HTML report: headline table, figures and a plain-language summary.

``python -m analysis.report RUN_DIR [RUN_DIR ...] [--out FILE]`` accepts run
folders and sweep folders (every run inside is pooled; intervals are then
taken over replications). ``python -m market.run`` calls :func:`after_run`
at the end of every run. plotly.js is inlined once, so the file opens with no
network.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import plotly.graph_objects as go
import polars as pl
import typer

from analysis import efficiency as eff
from analysis import fairness, figures, metrics, pages, stats
from analysis.load import AnalysisError, RunData, expand_runs, load_runs
from analysis.moments import finished_summary, moments_of, over_runs
from analysis.pages import Row, Table, figure_html
from analysis.tables import daily_series
from market.events import RejectionCode
from market.files import write_whole
from market.money import format_money
from market.scenario import Scenario, ScenarioError, validate_scenario
from market.targets import (
    NOT_SIMULATED,
    PUBLISHED_FILE,
    Interval,
    Moment,
    Published,
    PublishedRow,
    Targets,
    compare,
    read_targets,
    write_published,
)
from running.provenance import Headline, HeadlineEffect, parse_compare, provenance_lines, write_headline
from running.runner import RunResult

REPORT_FILE = "report.html"


@dataclass
class Comparison:
    """One pair of tiers compared, read "top minus base", with every estimate of the pair."""

    top: str
    base: str
    headline: list[stats.Estimate] = field(default_factory=list)
    regression: list[stats.Estimate] = field(default_factory=list)
    noticed: list[stats.Estimate] = field(default_factory=list)
    per_run: pl.DataFrame | None = None
    seller_pairs: pl.DataFrame | None = None

    @property
    def title(self) -> str:
        """How the report names the pair: ``"<top> minus <base>"``."""
        return f"{self.top} minus {self.base}"


@dataclass
class Analysis:
    """Everything the report shows, computed from a run's (or runs') tables.

    ``contrast``, ``headline``, ``regression``, ``noticed``, ``per_run`` and
    ``seller_pairs`` are those of the first comparison; ``comparisons`` holds every pair.
    """

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
    comparisons: list[Comparison] = field(default_factory=list)
    provenance: list[str] = field(default_factory=list)
    conduct: pl.DataFrame | None = None
    rating_label: str = "simulated fairness rating"
    daily: pl.DataFrame | None = None
    published: Published | None = None

    @property
    def replications(self) -> int:
        """How many runs the analysis pools (1 for a single run)."""
        return len(self.data.runs)


def analyse(data: RunData, seed: int = 0, compare: Sequence[str] = ()) -> Analysis:
    """Compute every table and estimate of the report (no IO beyond reading stored ratings).

    ``compare`` names the tiers compared, measured first (default: the scenario's
    ``compare:``, else every pair in the order the scenario defines the tiers).
    """
    rated = fairness.rated_deals(data, fairness.ratings(data))
    out = Analysis(
        data=data, markets=metrics.market_summary(data), tiers=metrics.tier_summary(data, by_market=True),
        pairs=metrics.tier_pairs(data), efficiency=eff.efficiency(data), surplus=eff.surplus(data), rated=rated,
        fairness=fairness.fairness_by_tier(rated), contrast=None, provenance=provenance(data, compare),
        conduct=conduct(data), rating_label=fairness.rating_label(rated), daily=daily(data),
    )
    runs = data.participants["run"].unique(maintain_order=True).to_list()
    for top, base in stats.comparisons(data, tuple(compare)):
        pair = (top, base)
        c = Comparison(top, base, seller_pairs=stats.same_item_pairs(data, "seller", pair),
                       regression=stats.fixed_effects(data, pair))
        if out.replications > 1:
            c.per_run = stats.per_run_headline(data, seed, pair)
            c.headline = stats.across_runs(c.per_run, seed)
            noticed = [{"run": run, **e.as_dict()} for run in runs
                       for e in fairness.noticed(stats.subset(data, run), rated.filter(pl.col("run") == run), seed,
                                                 pair)]
            c.noticed = stats.across_runs(pl.DataFrame(noticed).drop("p_floor"), seed)
        else:
            c.headline = stats.headline(data, seed, pair)
            c.noticed = fairness.noticed(data, rated, seed, pair)
        out.comparisons.append(c)
    if out.comparisons:
        first = out.comparisons[0]
        out.contrast = (first.top, first.base)
        out.headline, out.regression, out.noticed = first.headline, first.regression, first.noticed
        out.per_run, out.seller_pairs = first.per_run, first.seller_pairs
    out.published = published(data, out.comparisons)
    return out


_EFFECTS = {"seller_premium_cents": 0, "buyer_savings_cents": 1, "extra_deals_per_person": 2}
"""Which of :func:`analysis.stats.headline`'s estimates each tier-effect moment is."""


def published(data: RunData, comparisons: Sequence[Comparison]) -> Published | None:
    """Each figure of the targets file the scenario names beside the simulated one (None when it names none).

    The moments are computed by :func:`analysis.moments.moments_of`, the calibration's code, from the tables
    already loaded (one run's regression is the comparison's). Over replications: the mean and a 95% t interval
    over the runs. One run: counts and volumes are point values (one week has no interval of its own); tier
    effects have the headline's bootstrap interval.
    """
    name = data.scenario.get("targets")
    if not name or not data.runs:
        return None
    targets: Targets = read_targets(data.runs[0] / str(name))
    simulable = [m for m in targets.moments if m.statistic not in NOT_SIMULATED]
    per_run = [_moments(data, run_id, run_dir, simulable, comparisons)
               for run_id, run_dir in zip(data.run_ids, data.runs, strict=True)]
    rows: list[PublishedRow] = []
    for m in targets.moments:
        values = [v.get(m.name, math.nan) for v in per_run]
        if m.statistic in NOT_SIMULATED:
            rows.append(compare(m, None))
        elif len(values) > 1:
            rows.append(over_runs(m, values))
        elif m.statistic in _EFFECTS or m.statistic == "same_item_premium_cents":
            c = next((c for c in comparisons if (c.top, c.base) == tuple(m.compare)), None)
            if m.statistic == "same_item_premium_cents":  # the regression's seller coefficient and its interval
                e = c.regression[0] if c is not None and c.regression else None
            else:
                e = c.headline[_EFFECTS[m.statistic]] if c is not None and len(c.headline) == 3 else None
            kind: Interval = "regression" if m.statistic == "same_item_premium_cents" else "bootstrap"
            if e is None or math.isnan(e.low):
                rows.append(compare(m, values[0]))
            else:
                rows.append(compare(m, values[0], e.low, e.high, kind, 1,
                                    (e.high - e.low) / (2 * 1.96)))  # the interval's half-width as an SE
        else:
            rows.append(compare(m, values[0]))
    return Published(targets=targets.name, rows=rows)


def _moments(data: RunData, run_id: str, run_dir: Path, moments: Sequence[Moment],
             comparisons: Sequence[Comparison]) -> dict[str, float]:
    """One run's moments out of ``data``; a single run reuses the comparisons' regressions (fitted on its deals)."""
    summary = finished_summary(run_dir)
    if len(data.runs) > 1:
        return moments_of(stats.subset(data, run_id), summary, moments)
    fitted = {(c.top, c.base): c.regression[0].value for c in comparisons if c.regression}
    return moments_of(data, summary, moments, fitted)


def provenance(data: RunData, compare: Sequence[str] = ()) -> list[str]:
    """The report's first lines: per tier its backend and model, offline profile or custom policy (named by its
    ``module:factory``), then seeds, participants, budgets, days, and which tiers are compared in which
    direction (:func:`market.provenance.provenance_lines`)."""
    present = data.participants["tier"].unique().to_list()
    try:
        scenario = validate_scenario(data.scenario, str(data.path / "scenario.yaml"))
    except ScenarioError as exc:
        budgets = sorted(set(data.participants["budget"].to_list()))
        money = f"{_money(budgets[0])}" + (f" to {_money(budgets[-1])}" if len(budgets) > 1 else " each")
        seeds = ", ".join(str(s) for s in sorted(set(data.seeds or [data.seed])))
        return [
            f"Scenario {data.name}: {data.participants['participant_id'].n_unique()} participants with budgets of "
            f"{money}, {data.scenario.get('days', '?')} simulated day(s), seed(s) {seeds}.",
            f"Tiers: {', '.join(t for t in data.tiers if t in present)}. The run's scenario.yaml could not be read "
            f"in full, so how each tier was run is not known here ({str(exc).splitlines()[0]}).",
        ]
    return provenance_lines(scenario, seeds=data.seeds or [data.seed], compare=compare, present=present)


def daily(data: RunData) -> pl.DataFrame:
    """Per market and simulated day: new listings, deals and volume, the mean over the runs."""
    days = int(data.scenario.get("days", Scenario.model_fields["days"].default))
    frames = {"participants": data.participants, "listings": data.listings, "deals": data.deals}
    return (daily_series(frames, days).group_by("market", "day")
            .agg(pl.col("new_listings", "deals", "volume").mean()).sort("market", "day"))


def week_over_time(per_day: pl.DataFrame) -> pl.DataFrame:
    """The daily figures one row per market and measure (new listings, deals), one column per day."""
    rows = []
    for market in per_day["market"].unique(maintain_order=True).to_list():
        one = per_day.filter(pl.col("market") == market)
        for measure, column in (("new listings", "new_listings"), ("deals", "deals")):
            rows.append({"market": market, "measure": measure,
                         **{f"day {d}": v for d, v in zip(one["day"], one[column], strict=True)}})
    return pl.DataFrame(rows)


def conduct(data: RunData) -> pl.DataFrame:
    """Per tier: refused actions (by the exchange's stable code; how many were the principal's mandate
    holding) and failed turns (by kind), in total and per agent (one per participant and market)."""
    mandate = [c.value for c in RejectionCode if c.mandate]
    people = data.participants.group_by("tier").agg(agents=pl.len())
    refused = data.rejections.group_by("tier").agg(
        refused_actions=pl.len(), refused_by_mandate=pl.col("code").is_in(mandate).sum(),
        refused_codes=pl.col("code").value_counts(sort=True))
    failed = data.failures.group_by("tier").agg(
        failed_turns=pl.len(), failure_kinds=pl.col("kind").value_counts(sort=True))
    out = people.join(refused, on="tier", how="left").join(failed, on="tier", how="left")
    order = {t: i for i, t in enumerate(data.tiers)}
    rows = []
    for r in sorted(out.iter_rows(named=True), key=lambda r: order.get(r["tier"], len(order))):
        def kinds(values: list[dict[str, object]] | None) -> str:
            return ", ".join(f"{v[k]} {v['count']}" for v in values or [] for k in v if k != "count") or "none"

        n, refused_n, failed_n = r["agents"], r["refused_actions"] or 0, r["failed_turns"] or 0
        rows.append({"tier": r["tier"], "agents": n, "refused_actions": refused_n,
                     "refused_per_agent": refused_n / n, "refused_by_mandate": r["refused_by_mandate"] or 0,
                     "refused_by_code": kinds(r["refused_codes"]),
                     "failed_turns": failed_n, "failed_per_agent": failed_n / n,
                     "failed_by_kind": kinds(r["failure_kinds"])})
    return pl.DataFrame(rows)


# --- words ------------------------------------------------------------------------


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _money(cents: float | None) -> str:
    return "n/a" if cents is None or math.isnan(cents) else format_money(round(cents))


def _signed(e: stats.Estimate, up: str, down: str) -> str:
    """``$4.64 more (95% CI ...)``: the size with the word for its direction; the interval keeps its signs."""
    if math.isnan(e.value):
        return f"n/a {up}"
    word = up if e.value >= 0 else down
    money = "cents" in e.name
    size = _money(abs(e.value)) if money else f"{abs(e.value):,.2f}"
    low, high = (_money(e.low), _money(e.high)) if money else (f"{e.low:,.2f}", f"{e.high:,.2f}")
    return f"{size} {word} (95% CI of the difference {low} to {high})"


def _sure(e: stats.Estimate) -> str:
    if e.p_value is None or math.isnan(e.low):
        return "too few observations to say"
    if e.low > 0 or e.high < 0:
        return f"the interval excludes zero ({e.p_text})"
    return f"the interval includes zero, so this could be chance ({e.p_text})"


def _regression_sentence(c: Comparison) -> str | None:
    """The regression beside the paired estimates, saying whether it agrees with them, side by side."""
    if len(c.regression) != 2 or math.isnan(c.regression[0].value) or len(c.headline) < 2:
        return None
    s, b = c.regression
    # the paired buyer estimate is savings (base price minus top price): the regression's buyer term is a price
    savings = stats.Estimate(b.name, -b.value, -b.high, -b.low, b.p_value, b.n, b.method)
    verdicts = [("seller", stats.agrees(c.headline[0], s)), ("buyer", stats.agrees(c.headline[1], savings))]
    agreeing = [side for side, ok in verdicts if ok]
    if len(agreeing) == 2:
        verdict = "agrees with both paired estimates"
    elif agreeing:
        other = next(side for side, ok in verdicts if not ok)
        verdict = f"agrees with the paired {agreeing[0]} estimate but not with the {other} one"
    else:
        verdict = "does not agree with the paired estimates (a different sign or intervals that do not overlap)"
    return (
        f"A regression of price on both tiers with item effects {verdict}: a {c.top} seller adds "
        f"{_money(s.value)} (95% CI {_money(s.low)} to {_money(s.high)}) and a {c.top} buyer changes the price by "
        f"{_money(b.value)} (95% CI {_money(b.low)} to {_money(b.high)})."
    )


def summary_text(a: Analysis) -> list[str]:
    """Plain-language paragraphs; every number comes from ``a``. (The provenance lines come before them.)"""
    m = a.markets
    runs = a.replications
    scope = f"{runs} replications" if runs > 1 else "this run"
    deals, volume = int(m["deals"].sum()), int(m["volume_cents"].sum())
    per = f" ({deals / runs:,.0f} deals and {_money(volume / runs)} per replication)" if runs > 1 else ""
    lines = [
        f"Across {scope} of scenario “{a.data.name}”, {m['market'].n_unique()} market(s) closed {deals:,} deals "
        f"worth {_money(volume)} in total{per}; {m['participants'].max()} participants took part in each market."
    ]
    if not a.comparisons:
        lines.append("Only one tier took part, so there is no tier effect to estimate.")
    how = "averaged over replications, with intervals over replications" if runs > 1 else \
        "pairing the same item across markets and the same person across mixed markets"
    label = a.rating_label
    for c in a.comparisons:
        top, base = c.top, c.base
        seller, buyer, extra = c.headline
        lines.append(
            f"{top} minus {base}: did the {top} tier get better deals? Sold by a {top} agent, the same item fetched "
            f"{_signed(seller, 'more', 'less')} than when a {base} agent sold it; {_sure(seller)}. Bought by a {top} "
            f"agent it cost {_signed(buyer, 'less', 'more')}; {_sure(buyer)}. In the markets where tiers mix, a person "
            f"closed {_signed(extra, 'more', 'fewer')} deals when represented by {top}; {_sure(extra)}. ({how}.)"
        )
        sentence = _regression_sentence(c)
        if sentence:
            lines.append(sentence)
        if len(c.noticed) == 2 and not math.isnan(c.noticed[1].value):
            gap, rating = c.noticed
            direction = "lower" if rating.high < 0 else "about the same" if rating.low <= 0 <= rating.high else \
                "higher"
            caveat = ("Simulated ratings: computed from each principal's surplus by an assumed curve, not anyone's "
                      "answer. ") if label.startswith("simulated") else ""
            lines.append(
                f"Did anyone notice? ({caveat}{label.capitalize()}s, 1-7 scale.) People represented by {base} earned "
                f"{_money(gap.value)} less surplus per deal (95% CI {_money(gap.low)} to {_money(gap.high)}); the "
                f"{label} of {top}'s principals minus {base}'s is {rating.value:.2f} points (95% CI "
                f"{rating.low:.2f} to {rating.high:.2f}), {direction}."
            )
    if a.comparisons:
        sources = a.rated["source"].value_counts().sort("source")
        told = ", ".join(f"{n:,} {s}" for s, n in sources.iter_rows())
        lines.append(f"Fairness ratings used: {told} (simulated ratings are an assumption, not a finding)." if told
                     else fairness.NOT_SIMULATED)
    if a.conduct is not None and a.conduct.height:
        parts = [f"{r['tier']} {_count(r['refused_actions'], 'refused action')} ({r['refused_per_agent']:.2f} per "
                 f"agent; {r['refused_by_mandate']:,} of them the principal's mandate holding) and "
                 f"{_count(r['failed_turns'], 'failed turn')}" for r in a.conduct.iter_rows(named=True)]
        lines.append("Refused actions and failed turns by tier: " + "; ".join(parts) + ".")
    e = a.efficiency
    if e.height:
        what = "Allocative efficiency (realised gains from trade over the best allocation under the same budgets)"
        if e.height == 1:
            lines.append(f"{what} was {e['efficiency'][0]:.1%} in the one market.")
        else:
            lines.append(
                f"{what} ranged from {e['efficiency'].min():.1%} to {e['efficiency'].max():.1%} across markets"
                f"{' and replications' if runs > 1 else ''}, mean {e['efficiency'].mean():.1%}."
            )
    return lines


def headline_effects(a: Analysis) -> list[HeadlineEffect]:
    """The headline effects of every comparison, in dollars or deals, as the terminal prints them."""
    out = []
    for c in a.comparisons:
        for e in c.headline:
            money = "cents" in e.name
            scale = 100 if money else 1
            value = e.value / scale
            if math.isnan(value):
                continue
            low, high = (None, None) if math.isnan(e.low) else (e.low / scale, e.high / scale)
            out.append(HeadlineEffect(name=e.name.replace(" (cents)", ""), unit="$" if money else "deals",
                                      value=value, low=low, high=high, p=e.p_text, method=e.method))
    return out


# --- the page ------------------------------------------------------------------------


_MONEY_COLUMNS = {"volume_cents", "seller_premium", "buyer_savings", "mean_price_cents", "optimal_cents",
                  "realised_cents", "buyer_surplus", "seller_surplus", "surplus", "mean_surplus"}
_PERCENT_COLUMNS = {"listings_sold", "efficiency"}
_HEADERS = {
    "price_ratio": "price / reference value", "price_ratio_as_seller": "price / value as seller",
    "price_ratio_as_buyer": "price / value as buyer", "listings_sold": "listed items sold",
    "deals_per_participant": "deals per participant", "rating_surplus_corr": "correlation of rating and surplus",
    "mean_rating": "mean rating (1-7)", "optimal_cents": "best possible gains", "realised_cents": "realised gains",
    "mean_surplus": "mean surplus per deal", "mean_price_cents": "mean price", "volume_cents": "volume",
    "refused_by_mandate": "refused by the principal's mandate",
    # price minus the item's reference value, per deal: not the headline seller premium (top tier minus base tier)
    "seller_premium": "sold above value", "buyer_savings": "bought below value",
}


def _header(column: str) -> str:
    """A column name as a person reads it: words, and ($) where cents are shown as dollars."""
    words = _HEADERS.get(column, column.removesuffix("_cents").replace("_", " "))
    return f"{words} ($)" if column in _MONEY_COLUMNS else f"{words} (%)" if column in _PERCENT_COLUMNS else words


def _cell(column: str, value: object) -> str:
    """One value formatted for people: dollars, percentages, thousands separators, two decimals."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if column in _MONEY_COLUMNS and isinstance(value, int | float):
        return _money(value)
    if column in _PERCENT_COLUMNS and isinstance(value, int | float):
        return f"{value:.1%}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{int(value):,}" if value.is_integer() and abs(value) < 1e15 else f"{value:,.2f}"
    return str(value)


def frame_table(df: pl.DataFrame, caption: str = "") -> Table:
    """A polars frame as a page table; cents columns shown as dollars, numbers formatted for people."""
    return Table.of([_header(c) for c in df.columns],
                    [[_cell(col, value) for col, value in row.items()] for row in df.iter_rows(named=True)], caption)


def estimates_table(estimates: list[stats.Estimate], caption: str) -> Table | None:
    """Estimates with their 95% intervals and p-values (``p < 1/n`` at a permutation test's floor); None if none."""
    rows = []
    for e in estimates:
        money = "cents" in e.name
        fmt = _money if money else (lambda v: "–" if math.isnan(v) else f"{v:,.2f}")
        p = "–" if e.p_value is None else e.p_text.removeprefix("p = ").removeprefix("p ")
        rows.append({"effect": e.name.replace(" (cents)", " ($)"), "estimate": fmt(e.value),
                     "95% CI low": fmt(e.low), "95% CI high": fmt(e.high), "p": p, "n": e.n, "method": e.method})
    return frame_table(pl.DataFrame(rows), caption) if rows else None


def published_table(p: Published) -> Table:
    """Each published figure beside the simulated one, its interval and the verdict (a row's class: inside, missed)."""
    rows = []
    for r in p.rows:
        css = "" if r.inside is None else "inside" if r.inside else "missed"
        simulated = r.show(r.simulated) if r.inside is not None else "–"
        verdict = r.verdict() + (f": {r.why_not}" if r.why_not else "")
        rows.append(Row((r.moment, r.published_text(), simulated, r.interval_text() or "–", verdict, r.source), css))
    caption = (f"Published ({p.targets}) against simulated. Inside: within the targets file's tolerance; where it "
               "gives a published standard error, |published - simulated| / sqrt(SE² + simulated SE²) < 1.96")
    return Table(("figure", "published", "simulated", "simulated 95% interval", "inside the published uncertainty?",
                  "source"), rows, caption, css="published")


def build_figures(a: Analysis) -> list[go.Figure]:
    """Every figure of the report, each axis labelled with its unit."""
    figs = [figures.price_by_tier(a.data)]
    for c in a.comparisons:
        if c.seller_pairs is not None:
            figs.append(figures.same_item_slopes(a.data, c.seller_pairs, c.top, c.base))
    figs += [
        figures.activity_over_time(a.data),
        *([figures.deals_by_day(a.daily)] if a.daily is not None and a.daily.height else []),
        figures.surplus_by_tier(a.surplus, a.data.tiers),
        figures.efficiency_by_market(a.efficiency),
        *([figures.fairness_vs_surplus(a.rated, a.data.tiers, a.rating_label)] if a.rated.height else []),
    ]
    effects = [e.as_dict() for c in a.comparisons for e in c.headline]
    if effects:
        figs.append(figures.effects_forest(effects))
    return figs


def render(a: Analysis) -> str:
    """The report as one HTML document with plotly.js inlined once; it opens with what produced its numbers."""
    figs = [figure_html(fig, k == 0, f"figure-{k}") for k, fig in enumerate(build_figures(a))]
    runs = ", ".join(p.name for p in a.data.runs[:6]) + (" …" if len(a.data.runs) > 6 else "")
    label = a.rating_label
    headline = [t for c in a.comparisons for t in (
        estimates_table(c.headline, f"Headline tier effects: {c.title}"),
        estimates_table(c.regression, f"Price regression with item fixed effects: {c.title}"),
        estimates_table(c.noticed, f"Did the principals notice? {c.title} (markets where tiers mix; {label})"),
    ) if t is not None]
    tier_cols = ["market", "tier", "participants", "deals_per_participant", "listings_sold", "price_ratio_as_seller",
                 "price_ratio_as_buyer", "seller_premium", "buyer_savings"]
    tiers = a.tiers.group_by(["market", "tier"]).agg(pl.col(tier_cols[2:]).mean()).sort(["market", "tier"])
    eff_table = a.efficiency.group_by("market").agg(
        pl.col("optimal_cents", "realised_cents").mean(), efficiency=pl.col("efficiency").mean(),
        runs=pl.len()).sort("market")
    week = frame_table(week_over_time(a.daily), "New listings and deals per simulated day and market (mean over "
                       "runs)") if a.daily is not None and a.daily.height else None
    tables = [
        frame_table(tiers.select(tier_cols), "Per market and tier (sold above value: price minus the item's "
                    "reference value as seller; bought below value: reference value minus price as buyer; per deal)"),
        frame_table(a.pairs, "Seller tier against buyer tier"),
        *([frame_table(a.conduct, "Refused actions and failed turns per tier")]
          if a.conduct is not None and a.conduct.height else []),
        frame_table(eff_table, "Allocative efficiency per market (mean over runs)"),
        *([frame_table(a.fairness, f"{label.capitalize()}s against surplus (per tier and side; 'simulated' counts "
                                   "ratings computed from surplus, not anyone's answer)")] if a.rated.height else []),
    ]
    return pages.render(
        "report.html", title=f"Market report: {a.data.name}", heading=f"Market report: {a.data.name}",
        provenance=a.provenance,
        published=published_table(a.published) if a.published is not None else None,
        published_sentence=a.published.sentence() if a.published is not None else "",
        runs=f"{len(a.data.runs)} run(s): {runs}. Money in dollars; computed from the ledgers.",
        summary=summary_text(a), headline=headline,
        markets=frame_table(a.markets.group_by("market").agg(
            pl.col("participants", "listings", "deals", "volume_cents", "price_ratio", "deals_per_participant")
            .mean()).sort("market"), "Markets (mean over runs)"),
        week=week, tables=tables, figures=figs,
    )


def write_report(paths: list[Path], out: Path | None = None, compare: Sequence[str] = ()) -> Path:
    """Load the runs, analyse them and write the report, and beside it ``headline.json`` (the headline
    effects the terminal prints); returns the report's path."""
    data = load_runs(paths)
    target = out or (Path(paths[0]) / REPORT_FILE)
    a = analyse(data, compare=compare)
    html_text = render(a)
    write_whole(target, html_text)
    write_headline(target.parent, Headline(report=str(target), effects=headline_effects(a)))
    if a.published is not None:
        write_published(target.parent, a.published)
    else:
        (target.parent / PUBLISHED_FILE).unlink(missing_ok=True)  # none from an earlier report of another scenario
    return target


def after_run(result: RunResult) -> None:
    """The ``market.after_run`` plugin: write report.html.

    ``result.folder`` is a run folder, or a sweep folder (then one pooled report is written into
    the sweep folder). No fairness rating is simulated (:data:`analysis.fairness.NOT_SIMULATED`).
    """
    path = result.folder.path
    try:
        write_report([Path(path)])
    except AnalysisError as exc:  # the run itself is complete and recorded; only the report is missing
        print(f"warning: no report written for {path}: {exc}", file=sys.stderr)
    except Exception as exc:  # a fault in the analysis must not turn a recorded run into a failed one
        print(f"warning: no report written for {path} ({type(exc).__name__}: {exc}); "
              f"see `python -m analysis.report {path}`", file=sys.stderr)


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]})


@app.command()
def main(
    runs: Annotated[list[Path], typer.Argument(help="run folders or sweep folders")],
    out: Annotated[Path | None, typer.Option(help="report file (default: report.html in the first folder)")] = None,
    compare: Annotated[str | None, typer.Option(
        help="the tiers compared, measured first, e.g. frontier:small (three or more: every pair)")] = None,
) -> None:
    """Write a self-contained report.html for one or more runs (sweep folders pool their runs)."""
    try:
        expand_runs(runs)
        tiers = parse_compare(compare) if compare else []
        path = write_report(runs, out, tiers)
    except AnalysisError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except ValueError as exc:  # --compare
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except OSError as exc:
        typer.echo(f"error: cannot write the report: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"report: {path}")


if __name__ == "__main__":
    app(prog_name="python -m analysis.report")
