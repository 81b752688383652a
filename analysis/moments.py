"""The published figures' moments computed from a run's loaded tables and its summary (one definition for the
calibration, the report and the terminal); the targets schema and the comparison rule live in
:mod:`market.targets`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import polars as pl
from scipy import stats as sps

from analysis import stats
from analysis.load import AnalysisError, RunData, load_run
from analysis.stats import Pair
from market.targets import NOT_SIMULATED, Moment, PublishedRow, compare
from running.runfolder import RunFolder, RunFolderError
from running.summary import RunSummary


def run_moments(run_dir: Path, moments: Sequence[Moment]) -> dict[str, float]:
    """Each simulable moment of the finished run folder ``run_dir`` (loaded by :func:`analysis.load.load_run`);
    :class:`analysis.load.AnalysisError` if it cannot be read or has no summary yet."""
    return moments_of(load_run(run_dir), finished_summary(run_dir), moments)


def finished_summary(run_dir: Path) -> RunSummary:
    """The run folder's summary (``RunFolder.read_summary``); :class:`analysis.load.AnalysisError` if it is
    missing or cannot be read."""
    try:
        summary = RunFolder(run_dir).read_summary()
    except RunFolderError as exc:
        raise AnalysisError(str(exc)) from None
    if summary is None:
        raise AnalysisError(f"{run_dir}: no summary.json; the run has not finished")
    return summary


def moments_of(data: RunData, summary: RunSummary, moments: Sequence[Moment],
               regressions: Mapping[Pair, float] | None = None) -> dict[str, float]:
    """Each simulable moment of one run from its loaded tables and its summary (NaN where the run has no units
    for it). ``regressions``: the item-effects regression's seller coefficient per pair of tiers where it is
    already fitted on these deals (the report's), so it is not fitted again."""
    markets = {m.market: m for m in summary.markets}
    out: dict[str, float] = {}
    for moment in moments:
        if moment.statistic in NOT_SIMULATED:
            continue
        if moment.statistic in ("deals", "listings", "volume_cents"):
            market = markets.get(moment.market or "")
            counts = {"deals": market.deals, "listings": market.listings, "volume_cents": market.volume_cents} \
                if market else {}
            out[moment.name] = float(counts.get(moment.statistic, math.nan))
        elif moment.statistic == "deals_total":
            out[moment.name] = float(sum(m.deals for m in markets.values()))
        elif moment.statistic == "listings_total":
            out[moment.name] = float(sum(m.listings for m in markets.values()))
        elif moment.statistic in ("median_price_cents", "items_sold_twice"):
            out[moment.name] = _deal_moment(data.deals, moment.statistic)
        elif moment.statistic == "same_item_premium_cents" and regressions and moment.compare in regressions:
            out[moment.name] = regressions[moment.compare]
        else:
            out[moment.name] = _tier_effect(data, moment)
    return out


def _tier_effect(data: RunData, moment: Moment) -> float:
    """A tier effect of one run, computed by :mod:`analysis.stats` (the one implementation the report uses)."""
    pair = moment.compare
    deals = data.deals
    if moment.statistic == "seller_premium_cents":
        return _mean(stats.same_item_pairs_of(deals, "seller", pair)["diff"])
    if moment.statistic == "buyer_savings_cents":
        return -_mean(stats.same_item_pairs_of(deals, "buyer", pair)["diff"])
    if moment.statistic == "same_item_premium_cents":
        return stats.fixed_effects_of(deals, pair)[0].value
    return _mean(stats.person_pairs_of(data.participants, deals, pair)["diff"])


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

