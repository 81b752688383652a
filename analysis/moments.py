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
            if frames is None:
                with Ledger(run_dir / "ledger.sqlite") as ledger:
                    frames = project(((r.market, r.event) for r in ledger.records()), run_dir.name)
                frames["deals"] = enrich_deals(frames)
            out[moment.name] = _tier_effect(frames, moment)
    return out


def _paired(df: pl.DataFrame, unit: str, group: str, value: str, a: str, b: str) -> float:
    means = df.filter(pl.col(group).is_in([a, b])).group_by(unit, group).agg(pl.col(value).mean())
    wide = means.pivot(on=group, index=unit, values=value)
    if a not in wide.columns or b not in wide.columns:
        return math.nan
    diffs = wide.drop_nulls([a, b]).select(pl.col(a) - pl.col(b)).to_series()
    return float(diffs.mean()) if diffs.len() else math.nan


def _tier_effect(frames: dict[str, pl.DataFrame], moment: Moment) -> float:
    a, b = moment.compare
    deals = frames["deals"]
    if moment.statistic == "seller_premium_cents":
        return _paired(deals, "item_id", "seller_tier", "price", a, b)
    if moment.statistic == "buyer_savings_cents":
        return -_paired(deals, "item_id", "buyer_tier", "price", a, b)
    people = frames["participants"]
    mixed = people.group_by("market").agg(n=pl.col("tier").n_unique()).filter(pl.col("n") > 1)["market"].to_list()
    counts = pl.concat([deals.select("market", pl.col("seller").alias("participant_id")),
                        deals.select("market", pl.col("buyer").alias("participant_id"))])
    counts = counts.group_by("market", "participant_id").agg(deals=pl.len())
    per = (people.filter(pl.col("market").is_in(mixed)).join(counts, on=["market", "participant_id"], how="left")
           .with_columns(pl.col("deals").fill_null(0)))
    return _paired(per, "participant_id", "tier", "deals", a, b)


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

