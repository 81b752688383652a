"""The published figures' moments computed from a run folder (one definition for the calibration, the report
and the terminal); the targets schema and the comparison rule live in :mod:`market.targets`."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl
from scipy import stats as sps

from analysis import stats
from analysis.tables import enrich_deals, project
from market.ledger import Ledger
from market.targets import NOT_SIMULATED, Moment, PublishedRow, compare


def run_moments(run_dir: Path, moments: Sequence[Moment]) -> dict[str, float]:
    """Each simulable moment of one finished run (NaN where the run has no units for it)."""
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    markets = {m["market"]: m for m in summary["markets"]}
    frames: dict[str, pl.DataFrame] | None = None
    out: dict[str, float] = {}
    for moment in moments:
        if moment.statistic in NOT_SIMULATED:
            continue
        if moment.statistic in ("deals", "listings", "volume_cents"):
            market = markets.get(moment.market or "")
            out[moment.name] = float(market[moment.statistic]) if market else math.nan
        elif moment.statistic == "deals_total":
            out[moment.name] = float(sum(m["deals"] for m in markets.values()))
        elif moment.statistic == "listings_total":
            out[moment.name] = float(sum(m["listings"] for m in markets.values()))
        else:
            if frames is None:  # read the ledger once, for the moments that need the deals
                with Ledger(run_dir / "ledger.sqlite") as ledger:
                    frames = project(((r.market, r.event) for r in ledger.records()), run_dir.name)
                frames["deals"] = enrich_deals(frames)
            if moment.statistic in ("median_price_cents", "items_sold_twice"):
                out[moment.name] = _deal_moment(frames["deals"], moment.statistic)
            else:
                out[moment.name] = _tier_effect(frames, moment)
    return out


def _tier_effect(frames: dict[str, pl.DataFrame], moment: Moment) -> float:
    """A tier effect of one run, computed by :mod:`analysis.stats` (the one implementation the report uses)."""
    pair = moment.compare
    deals = frames["deals"]
    if moment.statistic == "seller_premium_cents":
        return _mean(stats.same_item_pairs_of(deals, "seller", pair)["diff"])
    if moment.statistic == "buyer_savings_cents":
        return -_mean(stats.same_item_pairs_of(deals, "buyer", pair)["diff"])
    if moment.statistic == "same_item_premium_cents":
        return stats.fixed_effects_of(deals, pair)[0].value
    return _mean(stats.person_pairs_of(frames["participants"], deals, pair)["diff"])


def _mean(diffs: pl.Series) -> float:
    return float(diffs.mean()) if diffs.len() else math.nan  # type: ignore[arg-type]


def _deal_moment(deals: pl.DataFrame, statistic: str) -> float:
    """A figure over all markets' deals: the median price, or the items sold in at least two markets."""
    if deals.is_empty():
        return math.nan
    if statistic == "median_price_cents":
        return float(deals["price"].median())  # type: ignore[arg-type]
    sold = deals.group_by("item_id").agg(markets=pl.col("market").n_unique())
    return float(sold.filter(pl.col("markets") >= 2).height)


def interval(values: Sequence[float]) -> tuple[float, float, float, int]:
    """Mean and 95% t interval over runs (NaN runs left out); n."""
    arr = np.array([v for v in values if not math.isnan(v)], dtype=float)
    if arr.size == 0:
        return math.nan, math.nan, math.nan, 0
    if arr.size == 1:
        return float(arr[0]), math.nan, math.nan, 1
    half = float(sps.t.ppf(0.975, arr.size - 1) * arr.std(ddof=1) / math.sqrt(arr.size))
    return float(arr.mean()), float(arr.mean() - half), float(arr.mean() + half), int(arr.size)


def over_runs(moment: Moment, values: Sequence[float]) -> PublishedRow:
    """``moment`` against its mean over several runs (95% t interval over the runs)."""
    mean, low, high, n = interval(values)
    if n < 2:
        return compare(moment, None if math.isnan(mean) else mean)
    clean = np.array([v for v in values if not math.isnan(v)], dtype=float)
    return compare(moment, mean, low, high, "replications", n, float(clean.std(ddof=1) / math.sqrt(n)))

