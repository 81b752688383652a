"""Plotly figures of a run (or pooled runs). Dollars on axes; the data stay in cents."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from analysis.load import RunData
from analysis.metrics import deal_outcomes
from market.clock import DAY

PALETTE = ["#1f6feb", "#e8871e", "#2da44e", "#cf222e", "#8250df", "#57606a"]
SLOPE_ITEMS = 80
MIN_BOX = 5
"""Fewer values than this are drawn as points, not as a box plot (one market is not a distribution)."""


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
                fig.add_trace(_spread(ratios, [f"as {side}"] * len(ratios), name=tier, legendgroup=tier,
                                      showlegend=side == "seller", marker_color=_colour(data.tiers, tier)))
    fig.add_hline(y=1.0, line_dash="dot", line_color="grey")
    return _layout(fig, "Price relative to reference value, by tier", boxmode="group",
                   yaxis_title="price / reference value (ratio; 1 = at value)", xaxis_title="side of the deal")


def _spread(values: list[float], x: list[str], **style: object) -> go.Box | go.Scatter:
    """A box plot of ``values`` when there are enough of them, else the values themselves as points."""
    if len(values) >= MIN_BOX:
        return go.Box(y=values, x=x, boxmean=True, **style)
    colour = style.pop("marker_color", None)
    return go.Scatter(y=values, x=x, mode="markers", marker={"size": 10, "color": colour}, **style)


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
    return _layout(fig, f"The same item sold by each tier{note}", yaxis_title="mean price of the item ($)",
                   xaxis_title="seller's tier")


def activity_over_time(data: RunData) -> go.Figure:
    """Cumulative deals and volume through the week, per market (mean over runs when pooled)."""
    hourly = data.hourly.group_by(["market", "hour"]).agg(pl.col("deals", "volume").mean()).sort(["market", "hour"])
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True,
                        subplot_titles=("deals closed so far (count)", "money traded so far ($)"))
    for k, market in enumerate(sorted(hourly["market"].unique().to_list())):
        one = hourly.filter(pl.col("market") == market)
        colour = PALETTE[k % len(PALETTE)]
        fig.add_trace(go.Scatter(x=one["hour"] / 24, y=one["deals"], name=f"market {market}", legendgroup=market,
                                 line={"color": colour}), row=1, col=1)
        fig.add_trace(go.Scatter(x=one["hour"] / 24, y=one["volume"] / 100, name=f"market {market}",
                                 legendgroup=market, showlegend=False, line={"color": colour}), row=2, col=1)
    fig.update_xaxes(title_text="simulated day", row=2, col=1)
    fig.update_yaxes(title_text="deals", row=1, col=1)
    fig.update_yaxes(title_text="$", row=2, col=1)
    return _layout(fig, "Deals and volume over the week", height=520)


def deals_by_day(daily: pl.DataFrame) -> go.Figure:
    """Deals closed and listings opened on each simulated day, per market (``daily``: mean over runs)."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True,
                        subplot_titles=("deals closed that day (count)", "listings opened that day (count)"))
    for k, market in enumerate(sorted(daily["market"].unique().to_list())):
        one = daily.filter(pl.col("market") == market)
        colour = PALETTE[k % len(PALETTE)]
        fig.add_trace(go.Bar(x=one["day"], y=one["deals"], name=f"market {market}", legendgroup=market,
                             marker_color=colour), row=1, col=1)
        fig.add_trace(go.Bar(x=one["day"], y=one["new_listings"], name=f"market {market}", legendgroup=market,
                             showlegend=False, marker_color=colour), row=2, col=1)
    fig.update_xaxes(title_text="simulated day", dtick=1, row=2, col=1)
    fig.update_yaxes(title_text="deals", row=1, col=1)
    fig.update_yaxes(title_text="listings", row=2, col=1)
    return _layout(fig, "The week over time: deals and new listings per day", barmode="group", height=520)


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
        style = {"name": f"market {market}", "marker_color": PALETTE[k % len(PALETTE)]}
        if len(values) >= MIN_BOX:
            fig.add_trace(go.Box(y=values, x=[f"market {market}"] * len(values), boxpoints="all", jitter=0.3,
                                 **style))
        else:  # one run (or a few): a point per run, not a box
            fig.add_trace(_spread(values, [f"market {market}"] * len(values), **style))
    fig.add_hline(y=1.0, line_dash="dot", line_color="grey")
    runs = int(eff.group_by("market").len()["len"].max() or 0) if eff.height else 0
    return _layout(fig, "Allocative efficiency: realised gains / best possible under the same budgets"
                   + (f" ({runs} runs per market)" if runs > 1 else ""),
                   yaxis_title="efficiency (share of the best possible gains)", yaxis_tickformat=".0%",
                   yaxis_range=[0, 1.05], xaxis_title="market", showlegend=False)


def fairness_vs_surplus(rated: pl.DataFrame, tiers: list[str], label: str = "fairness rating") -> go.Figure:
    """Each principal's fairness rating of a deal against their surplus on it, by tier; tier means marked.
    ``label`` says how the ratings were made (e.g. "simulated fairness rating"), in the title and on the axis."""
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
    return _layout(fig, f"{label[0].upper()}{label[1:]} against actual surplus",
                   xaxis_title="the principal's surplus on the deal ($)",
                   yaxis_title=f"{label} (1-7 scale, jittered)", yaxis_range=[0.5, 7.5])


def effects_forest(estimates: list[dict[str, object]]) -> go.Figure:
    """Headline tier effects with 95% intervals: money effects in dollars and count effects in deals, each on
    its own axis with its unit."""
    groups = [(unit, [e for e in estimates if ("cents" in str(e["name"])) == money])
              for unit, money in (("effect ($)", True), ("effect (deals per person)", False))]
    groups = [(unit, group) for unit, group in groups if group]
    fig = make_subplots(rows=max(len(groups), 1), cols=1, vertical_spacing=0.25,
                        row_heights=[len(g) for _, g in groups] or [1])
    for row, (unit, group) in enumerate(groups, start=1):
        scale = 100 if unit.endswith("($)") else 1
        for e in group:
            name = str(e["name"]).replace(" (cents)", "")
            fig.add_trace(go.Scatter(
                x=[float(e["value"]) / scale], y=[name], mode="markers", marker={"size": 12, "color": PALETTE[0]},
                error_x={"type": "data", "symmetric": False,
                         "array": [(float(e["high"]) - float(e["value"])) / scale],
                         "arrayminus": [(float(e["value"]) - float(e["low"])) / scale]}, showlegend=False),
                row=row, col=1)
        fig.add_vline(x=0, line_dash="dot", line_color="grey", row=row, col=1)
        fig.update_xaxes(title_text=unit, row=row, col=1)
        fig.update_yaxes(title_text="effect", row=row, col=1)
    return _layout(fig, "Tier effects (measured tier minus baseline) with 95% confidence intervals",
                   height=160 + 70 * max(len(estimates), 1), margin={"l": 380, "t": 60, "r": 20, "b": 40})


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
        days = [0.0, *(one["at"] / DAY).to_list()]
        style = {"name": tier, "legendgroup": tier, "line": {"color": _colour(data.tiers, tier)}, "line_shape": "hv"}
        fig.add_trace(go.Scatter(x=days, y=[0.0, *[(k + 1) / people[tier] for k in range(one.height)]], **style),
                      row=1, col=1)
        fig.add_trace(go.Scatter(x=days, y=[0.0, *(one["sold"].cum_sum() / 100).to_list()], showlegend=False,
                                 **style), row=2, col=1)
    fig.update_xaxes(title_text="simulated day", row=2, col=1)
    fig.update_yaxes(title_text="deals per participant", row=1, col=1)
    fig.update_yaxes(title_text="$", row=2, col=1)
    return _layout(fig, "Deals per participant and volume sold, by tier", height=520)
