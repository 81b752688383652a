"""Perceived fairness: each principal rates each of their deals from 1 (unfair) to 7 (fair).

Ratings live in the run folder as ``fairness.jsonl``, one JSON object a line::

    {"market": "B", "deal_id": "D12", "participant_id": "p007", "rating": 5,
     "source": "simulated" | "model" | "person", "comment": ""}

The Slack bot appends people's answers (``source: "person"``); a model
backend may append its principal's view (``"model"``). A ``survey`` table in
``ledger.sqlite`` with the same columns is read too; a person's answer wins over a model's.

Fairness is not simulated by default (:data:`NOT_SIMULATED`). The published study found a mean of about
4.05 of 7 with no gap between tiers (4.05 vs 4.06); the stated rule :func:`simulate_rating` maps surplus to
a rating, so it gives the tier with more surplus a higher rating (5.75 with a +0.41 frontier gap on a
deal.yaml week), which that study contradicts. Fitting the rule to 4.05 and no gap would leave a constant
plus noise, agreeing with the published figure only by construction; so the report shows only answers
people or models gave, and says so. ``ratings(data, simulate=True)`` still fills the other sides with the
rule, labelled simulated, for a reader who wants to see what the assumption implies.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import polars as pl
from scipy.stats import mannwhitneyu

from analysis.load import AnalysisError, RunData
from analysis.metrics import mixed_markets
from analysis.stats import Estimate, contrast
from market.ratings import FAIRNESS_FILE, SCHEMA, SOURCES, FairnessRating, RatingsError
from market.ratings import read_ratings as stored_ratings

__all__ = ["FAIRNESS_FILE", "SOURCES", "FairnessRating", "combine", "fairness_by_tier", "noticed", "rated_deals",
           "ratings", "read_ratings", "simulate_rating", "simulate_ratings", "write_simulated"]

_SCHEMA = SCHEMA
NOT_SIMULATED = ("Fairness is not simulated: the offline week has no people to ask, and a rule mapping surplus to a "
                 "rating would invent a tier gap the published study did not find (about 4.05 of 7 for both tiers, "
                 "4.05 vs 4.06). Ratings appear only when people (the Slack survey) or models (market survey) "
                 "answered.")
"""What a report says when no deal has a rating."""


def simulate_rating(share: float, key: str) -> int:
    """A simulated 1-7 fairness rating from the principal's surplus share, with noise seeded by ``key``.

    ``share`` is the principal's gain over their limit: (value - price) / value
    for a buyer, (price - reserve) / reserve for a seller. The curve is an
    assumption: people who end up near their limit feel neutral (4), clear gains
    feel fair, and nobody sees what a better agent would have got.
    """
    noise = random.Random(key).gauss(0.0, 0.8)
    return max(1, min(7, round(4 + 3 * math.tanh(2.5 * share) + noise)))


def simulate_ratings(data: RunData) -> pl.DataFrame:
    """Simulated ratings for both sides of every deal (seeded by the run's seed)."""
    rows = []
    for d in data.deals.iter_rows(named=True):
        for side, pid in (("buyer", d["buyer"]), ("seller", d["seller"])):
            if side == "buyer":
                share = (d["buyer_value"] - d["price"]) / d["buyer_value"] if d["buyer_value"] else -1.0
            else:
                share = (d["price"] - d["seller_reserve"]) / max(d["seller_reserve"], 1)
            # the deal's own facts, not the folder's name: the same run rates the same wherever it lies
            key = f"{data.seed}:{d['market']}:{d['deal_id']}:{d['item_id']}:{d['price']}:{pid}"
            rows.append((d["run"], d["market"], d["deal_id"], pid, simulate_rating(share, key), "simulated", ""))
    return pl.DataFrame(rows, schema=_SCHEMA, orient="row")


def read_ratings(run_dir: Path, run_id: str | None = None) -> pl.DataFrame:
    """Stored ratings of one run folder (:func:`market.ratings.read_ratings`); bad lines are an AnalysisError."""
    try:
        return stored_ratings(run_dir, run_id)
    except RatingsError as exc:
        raise AnalysisError(str(exc)) from None


def combine(stored: pl.DataFrame, simulated: pl.DataFrame) -> pl.DataFrame:
    """One rating per (run, market, deal, participant): person over model over simulated."""
    rank = {s: i for i, s in enumerate(SOURCES)}
    both = pl.concat([stored, simulated]).with_columns(
        rank=pl.col("source").replace_strict(rank, return_dtype=pl.Int64))
    keys = ["run", "market", "deal_id", "participant_id"]
    return both.sort([*keys, "rank"]).unique(keys, keep="last", maintain_order=True).drop("rank")


def ratings(data: RunData, simulate: bool = False) -> pl.DataFrame:
    """Every stored rating for the runs in ``data`` (people's and models' answers); with ``simulate``, the deal
    sides nobody rated are filled by :func:`simulate_rating` (labelled ``simulated``)."""
    ids = data.run_ids or [p.name for p in data.runs]
    stored = pl.concat([read_ratings(p, i) for p, i in zip(data.runs, ids, strict=True)]) if data.runs \
        else read_ratings(data.path)
    return combine(stored, simulate_ratings(data)) if simulate else combine(stored, stored.clear())


def write_simulated(run_dir: Path, data: RunData) -> int:
    """Append simulated ratings for deal sides not yet rated to ``run_dir/fairness.jsonl``; returns how many."""
    stored = read_ratings(run_dir, data.run_ids[0] if len(data.run_ids) == 1 else None)
    seen = set(zip(stored["market"], stored["deal_id"], stored["participant_id"], strict=True))
    new = [r for r in simulate_ratings(data).iter_rows(named=True)
           if (r["market"], r["deal_id"], r["participant_id"]) not in seen]
    if new:
        with (run_dir / FAIRNESS_FILE).open("a", encoding="utf-8") as out:
            for r in new:
                line = FairnessRating.model_validate({k: r[k] for k in FairnessRating.model_fields})
                out.write(json.dumps(line.model_dump(), separators=(",", ":")) + "\n")
    return len(new)


def rated_deals(data: RunData, rated: pl.DataFrame, every_side: bool = False) -> pl.DataFrame:
    """Each rating beside the rater's tier, side and surplus on that deal (cents); with ``every_side``, every
    deal side, its rating null where nobody rated it."""
    deals = data.deals
    sides = pl.concat([
        deals.select("run", "market", "deal_id", pl.col("buyer").alias("participant_id"),
                     pl.col("buyer_tier").alias("tier"), pl.lit("buyer").alias("side"),
                     (pl.col("buyer_value") - pl.col("price")).alias("surplus")),
        deals.select("run", "market", "deal_id", pl.col("seller").alias("participant_id"),
                     pl.col("seller_tier").alias("tier"), pl.lit("seller").alias("side"),
                     (pl.col("price") - pl.col("seller_reserve")).alias("surplus")),
    ])
    return sides.join(rated, on=["run", "market", "deal_id", "participant_id"], how="left" if every_side else "inner")


def fairness_by_tier(rated: pl.DataFrame) -> pl.DataFrame:
    """Per tier and side: mean rating, mean surplus per deal (cents), their correlation, and who rated
    (``simulated``: computed from surplus, an assumption; ``people``: answered in Slack; ``model``: asked of the
    tier's model)."""
    return rated.group_by(["tier", "side"]).agg(
        ratings=pl.len(), mean_rating=pl.col("rating").mean(), mean_surplus=pl.col("surplus").mean(),
        rating_surplus_corr=pl.corr("rating", "surplus"),
        simulated=(pl.col("source") == "simulated").sum(),
        people=(pl.col("source") == "person").sum(),
        model=(pl.col("source") == "model").sum(),
    ).sort(["tier", "side"])


def rating_label(rated: pl.DataFrame) -> str:
    """How the ratings in ``rated`` were made, for every place a rating is shown:
    ``simulated fairness rating`` when none is anyone's answer, ``fairness rating (none: not simulated)``
    when there are none."""
    if not rated.height:
        return "fairness rating (none: not simulated)"
    sources = set(rated["source"].to_list())
    if sources == {"simulated"}:
        return "simulated fairness rating"
    if "simulated" in sources:
        share = (rated["source"] == "simulated").mean()
        return f"fairness rating ({share:.0%} simulated)"
    return "fairness rating"


def noticed(data: RunData, rated: pl.DataFrame, seed: int = 0, pair: tuple[str, str] | None = None) -> list[Estimate]:
    """Did the base tier's principals notice? Gap (top minus base) in mean surplus per deal and in mean rating,
    with bootstrap intervals over principals, in markets where the tiers mix. The rating's name says when
    the ratings are simulated."""
    top, base = pair or contrast(data)
    markets = mixed_markets(data)
    mixed = rated.filter(pl.col("market").is_in(markets))
    # surplus from every deal side, ratings where someone rated (fairness is not simulated by default)
    sides = rated_deals(data, rated.select("run", "market", "deal_id", "participant_id", "rating"), every_side=True)
    # sorted: the bootstrap below draws by position, and group_by's order is not fixed (the same run's report
    # showed another interval each time it was written)
    per_person = (sides.filter(pl.col("market").is_in(markets))
                  .group_by(["run", "market", "participant_id", "tier"])
                  .agg(rating=pl.col("rating").mean(), surplus=pl.col("surplus").mean())
                  .sort("run", "market", "participant_id"))
    out = []
    for column, label in (("surplus", "surplus per deal (cents)"), ("rating", f"{rating_label(mixed)} (1-7)")):
        a = per_person.filter((pl.col("tier") == top) & pl.col(column).is_not_null())[column].to_numpy()
        b = per_person.filter((pl.col("tier") == base) & pl.col(column).is_not_null())[column].to_numpy()
        if a.size < 2 or b.size < 2:
            why = "no ratings: fairness is not simulated" if column == "rating" and not mixed.height else \
                "too few principals"
            out.append(Estimate(f"{label}: {top} minus {base}", float("nan"), float("nan"), float("nan"), None,
                                int(a.size + b.size), why))
            continue
        rng = np.random.default_rng(seed)
        diffs = np.array([rng.choice(a, a.size).mean() - rng.choice(b, b.size).mean() for _ in range(2000)])
        low, high = np.quantile(diffs, [0.025, 0.975])
        p = float(mannwhitneyu(a, b).pvalue)
        out.append(Estimate(f"{label}: {top} minus {base}", float(a.mean() - b.mean()), float(low), float(high), p,
                            int(a.size + b.size), "per principal; bootstrap CI; Mann-Whitney p"))
    return out
