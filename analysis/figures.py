"""Plotly figures of a run (or pooled runs). Dollars on axes; the data stay in cents."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from analysis.load import RunData
from analysis.metrics import deal_outcomes

PALETTE = ["#1f6feb", "#e8871e", "#2da44e", "#cf222e", "#8250df", "#57606a"]
SLOPE_ITEMS = 80


def _colour(tiers: list[str], tier: str) -> str:
    return PALETTE[tiers.index(tier) % len(PALETTE)] if tier in tiers else PALETTE[-1]


def _layout(fig: go.Figure, title: str, **extra: object) -> go.Figure:
    settings: dict[str, object] = {
        "template": "plotly_white", "height": 420, "legend": {"orientation": "h", "y": -0.15},
        "margin": {"t": 60, "l": 60, "r": 20, "b": 50},
    }
    fig.update_layout(title=title, **{**settings, **extra})
    return fig


def price_by_tier(data: RunData) -> go.Figure:
    """Price relative to the item's reference value, by the seller's and by the buyer's tier."""
    deals = deal_outcomes(data)
    fig = go.Figure()
    for tier in data.tiers:
        for side in ("seller", "buyer"):
            ratios = deals.filter(pl.col(f"{side}_tier") == tier)["price_ratio"].to_list()
            if ratios:
                fig.add_trace(go.Box(y=ratios, x=[f"as {side}"] * len(ratios), name=tier, legendgroup=tier,
                                     showlegend=side == "seller", marker_color=_colour(data.tiers, tier),
                                     boxmean=True))
    fig.add_hline(y=1.0, line_dash="dot", line_color="grey")
    return _layout(fig, "Price relative to reference value, by tier", boxmode="group",
                   yaxis_title="price / value")


def same_item_slopes(data: RunData, pairs: pl.DataFrame, top: str, base: str) -> go.Figure:
    """Slope chart: the same item's mean price when sold by the base tier and by the top tier."""
    fig = go.Figure()
    shown = pairs.sort(pl.col("diff").abs(), descending=True).head(SLOPE_ITEMS)
    for row in shown.iter_rows(named=True):
        up = row["diff"] >= 0
        fig.add_trace(go.Scatter(
            x=[f"sold by {base}", f"sold by {top}"], y=[row[base] / 100, row[top] / 100], mode="lines+markers",
            line={"color": PALETTE[0] if up else PALETTE[1], "width": 1}, opacity=0.55, showlegend=False,
            hovertemplate=f"{row['item_id']} ({row['run']})<br>%{{x}}: $%{{y:.2f}}<extra></extra>"))
    if pairs.height:
        fig.add_trace(go.Scatter(
            x=[f"sold by {base}", f"sold by {top}"], y=[pairs[base].mean() / 100, pairs[top].mean() / 100],
            mode="lines+markers", name="mean over items", line={"color": "black", "width": 4}))
    note = f" ({shown.height} of {pairs.height} items with the largest gaps)" if pairs.height > shown.height else ""
    return _layout(fig, f"The same item sold by each tier{note}", yaxis_title="price ($)")


def activity_over_time(data: RunData) -> go.Figure:
    """Cumulative deals and volume through the week, per market (mean over runs when pooled)."""
    hourly = data.hourly.group_by(["market", "hour"]).agg(pl.col("deals", "volume").mean()).sort(["market", "hour"])
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, subplot_titles=("deals (cumulative)", "volume ($)"))
    for k, market in enumerate(sorted(hourly["market"].unique().to_list())):
        one = hourly.filter(pl.col("market") == market)
        colour = PALETTE[k % len(PALETTE)]
        fig.add_trace(go.Scatter(x=one["hour"] / 24, y=one["deals"], name=f"market {market}", legendgroup=market,
                                 line={"color": colour}), row=1, col=1)
        fig.add_trace(go.Scatter(x=one["hour"] / 24, y=one["volume"] / 100, name=f"market {market}",
                                 legendgroup=market, showlegend=False, line={"color": colour}), row=2, col=1)
    fig.update_xaxes(title_text="day", row=2, col=1)
    return _layout(fig, "Deals and volume over the week", height=520)


def surplus_by_tier(surplus: pl.DataFrame, tiers: list[str]) -> go.Figure:
    """Mean surplus per participant by market and tier, split into surplus as buyer and as seller."""
    table = surplus.group_by(["market", "tier"]).agg(pl.col("buyer_surplus", "seller_surplus").mean()).sort(
        ["market", "tier"])
    x = [f"{m} / {t}" for m, t in zip(table["market"], table["tier"], strict=True)]
    fig = go.Figure([
        go.Bar(x=x, y=table["seller_surplus"] / 100, name="as seller (price - reserve)", marker_color=PALETTE[0]),
        go.Bar(x=x, y=table["buyer_surplus"] / 100, name="as buyer (value - price)", marker_color=PALETTE[1]),
    ])
    del tiers
    return _layout(fig, "Surplus per participant by market and tier", barmode="stack",
                   yaxis_title="mean surplus per participant ($)", xaxis_title="market / tier")


def efficiency_by_market(eff: pl.DataFrame) -> go.Figure:
    """Realised gains from trade over the best allocation, per market (every run as a point when pooled)."""
    fig = go.Figure()
    for k, market in enumerate(sorted(eff["market"].unique().to_list())):
        values = eff.filter(pl.col("market") == market)["efficiency"].to_list()
        fig.add_trace(go.Box(y=values, name=f"market {market}", boxpoints="all", jitter=0.3,
                             marker_color=PALETTE[k % len(PALETTE)]))
    fig.add_hline(y=1.0, line_dash="dot", line_color="grey")
    return _layout(fig, "Allocative efficiency: realised gains / best possible under the same budgets",
                   yaxis_title="efficiency", yaxis_range=[0, 1.05], showlegend=False)


def fairness_vs_surplus(rated: pl.DataFrame, tiers: list[str]) -> go.Figure:
    """Each principal's fairness rating of a deal against their surplus on it, by tier; tier means marked."""
    fig = go.Figure()
    for k, tier in enumerate(t for t in tiers if t in set(rated["tier"].to_list())):
        one = rated.filter(pl.col("tier") == tier)
        jitter = ((pl.int_range(0, one.height, eager=True) * 7919) % 101 / 250 - 0.2).to_list()
        fig.add_trace(go.Scatter(
            x=one["surplus"] / 100, y=[r + j for r, j in zip(one["rating"], jitter, strict=True)], mode="markers",
            name=tier, marker={"color": _colour(tiers, tier), "size": 5, "opacity": 0.35}, legendgroup=tier))
        fig.add_trace(go.Scatter(
            x=[one["surplus"].mean() / 100], y=[one["rating"].mean()], mode="markers", name=f"{tier} mean",
            marker={"color": _colour(tiers, tier), "size": 16, "symbol": "diamond", "line": {"width": 2}},
            legendgroup=tier))
        del k
    return _layout(fig, "Perceived fairness against actual surplus", xaxis_title="surplus on the deal ($)",
                   yaxis_title="fairness rating (1-7)", yaxis_range=[0.5, 7.5])


def effects_forest(estimates: list[dict[str, object]]) -> go.Figure:
    """Headline tier effects with 95% intervals (cents shown as dollars, counts as counts)."""
    fig = go.Figure()
    for e in estimates:
        money = "cents" in str(e["name"])
        scale = 100 if money else 1
        name = str(e["name"]).replace(" (cents)", " ($)")
        fig.add_trace(go.Scatter(
            x=[float(e["value"]) / scale], y=[name], mode="markers", marker={"size": 12, "color": PALETTE[0]},
            error_x={"type": "data", "symmetric": False, "array": [(float(e["high"]) - float(e["value"])) / scale],
                     "arrayminus": [(float(e["value"]) - float(e["low"])) / scale]}, showlegend=False))
    fig.add_vline(x=0, line_dash="dot", line_color="grey")
    return _layout(fig, "Tier effects with 95% confidence intervals", height=120 + 70 * max(len(estimates), 1),
                   margin={"l": 380, "t": 60, "r": 20, "b": 40})


def tier_activity_over_time(data: RunData) -> go.Figure:
    """Cumulative deals per participant (as seller or buyer) and volume sold, by tier, through the week."""
    members = data.participants.group_by("tier").len()
    people = dict(zip(members["tier"].to_list(), members["len"].to_list(), strict=True))
    sides = pl.concat([
        data.deals.select("at", pl.col("seller_tier").alias("tier"), pl.col("price").alias("sold")),
        data.deals.select("at", pl.col("buyer_tier").alias("tier"), pl.lit(0, pl.Int64).alias("sold")),
    ]).sort("at")
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True,
                        subplot_titles=("deals per participant (cumulative)", "volume sold ($, cumulative)"))
    for tier in data.tiers:
        if not people.get(tier):
            continue
        one = sides.filter(pl.col("tier") == tier)
        days = [0.0, *(one["at"] / 86_400).to_list()]
        style = {"name": tier, "legendgroup": tier, "line": {"color": _colour(data.tiers, tier)}, "line_shape": "hv"}
        fig.add_trace(go.Scatter(x=days, y=[0.0, *[(k + 1) / people[tier] for k in range(one.height)]], **style),
                      row=1, col=1)
        fig.add_trace(go.Scatter(x=days, y=[0.0, *(one["sold"].cum_sum() / 100).to_list()], showlegend=False,
                                 **style), row=2, col=1)
    fig.update_xaxes(title_text="day", row=2, col=1)
    return _layout(fig, "Deals per participant and volume sold, by tier", height=520)
