"""Allocative efficiency: realised gains from trade over the best allocation under the same budgets.

A buyer's value for an item is their most-they-would-pay for its kind (one
unit per want); a seller's cost is their reserve. The best allocation is
solved exactly as a mixed-integer program (scipy's HiGHS): binary x[p] for
each (want, item) pair worth trading and a price q[p] between reserve and
value, such that each item goes once, each want is filled once, and nobody
pays more than their budget plus what their own sales bring in. The total
gain (value minus reserve) does not depend on prices; prices only have to
make the allocation affordable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from analysis.load import RunData

KEYS = ["run", "market"]


@dataclass(frozen=True)
class Optimum:
    """The best total gain from trade (cents) and how many trades reach it."""

    gains: int
    trades: int
    status: str


def best_allocation(items: pl.DataFrame, wants: pl.DataFrame, budgets: dict[str, int],
                    time_limit: float = 60.0) -> Optimum:
    """Exact maximum gains from trade for one market.

    ``items``: item_id, owner, kind, reserve (cents); ``wants``: participant_id,
    kind, max_price (cents); ``budgets``: participant id -> cents. Should the
    solver hit ``time_limit`` seconds (very large markets), the best allocation
    found so far is returned and ``status`` says so.
    """
    wants = wants.with_row_index("w")
    items = items.with_row_index("i")
    pairs = (
        wants.join(items, on="kind")
        .filter((pl.col("owner") != pl.col("participant_id")) & (pl.col("max_price") > pl.col("reserve")))
        .with_columns(gain=pl.col("max_price") - pl.col("reserve"))
    )
    n = pairs.height
    if n == 0:
        return Optimum(0, 0, "no pair of want and item can trade")
    people = sorted(budgets)
    person = {p: k for k, p in enumerate(people)}
    rows = np.arange(n)
    w_idx, i_idx = pairs["w"].to_numpy(), pairs["i"].to_numpy()
    reserve, value = pairs["reserve"].to_numpy().astype(float), pairs["max_price"].to_numpy().astype(float)
    buyer = np.array([person[p] for p in pairs["participant_id"]])
    seller = np.array([person[p] for p in pairs["owner"]])
    # variables: x[0..n) binary, q[n..2n) prices
    one_each = sparse.vstack([
        sparse.csr_matrix((np.ones(n), (i_idx, rows)), shape=(items.height, n)),
        sparse.csr_matrix((np.ones(n), (w_idx, rows)), shape=(wants.height, n)),
    ])
    zeros = sparse.csr_matrix((one_each.shape[0], n))
    eye = sparse.identity(n, format="csr")
    price_low = sparse.hstack([sparse.diags(reserve), -eye])   # reserve*x - q <= 0
    price_high = sparse.hstack([-sparse.diags(value), eye])    # q - value*x <= 0
    cash = sparse.csr_matrix(
        (np.concatenate([np.ones(n), -np.ones(n)]), (np.concatenate([buyer, seller]), np.concatenate([rows, rows]))),
        shape=(len(people), n))
    constraints = [
        LinearConstraint(sparse.hstack([one_each, zeros]), -np.inf, 1),
        LinearConstraint(price_low, -np.inf, 0),
        LinearConstraint(price_high, -np.inf, 0),
        LinearConstraint(sparse.hstack([sparse.csr_matrix((len(people), n)), cash]), -np.inf,
                         np.array([budgets[p] for p in people], dtype=float)),
    ]
    gain = pairs["gain"].to_numpy().astype(float)
    result = milp(
        c=np.concatenate([-gain, np.zeros(n)]), constraints=constraints,
        integrality=np.concatenate([np.ones(n), np.zeros(n)]),
        bounds=Bounds(np.zeros(2 * n), np.concatenate([np.ones(n), value])),
        options={"mip_rel_gap": 0.0, "time_limit": time_limit},
    )
    if result.x is None:
        return Optimum(0, 0, f"solver failed: {result.message}")
    chosen = result.x[:n] > 0.5
    status = "optimal" if result.status == 0 else f"not proven optimal: {result.message}"
    return Optimum(round(float(gain[chosen].sum())), int(chosen.sum()), status)


def efficiency(data: RunData) -> pl.DataFrame:
    """Per run and market: realised gains from trade, the optimum, and their ratio."""
    realised = data.deals.group_by(KEYS).agg(
        realised_cents=(pl.col("buyer_value") - pl.col("seller_reserve")).sum(), deals=pl.len())
    rows = []
    solved: dict[int, Optimum] = {}
    for (run, market), people in data.participants.group_by(KEYS, maintain_order=True):
        key = (pl.col("run") == run) & (pl.col("market") == market)
        items = data.items.filter(key).select(
            "item_id", "owner", "kind", pl.coalesce("reserve", "value").alias("reserve"))
        wants = data.wants.filter(key).select("participant_id", "kind", "max_price")
        budgets = dict(zip(people["participant_id"], people["budget"], strict=True))
        # markets of one run usually share people, items and wants (only tiers differ): solve once
        key = hash((tuple(items.sort("item_id").rows()), tuple(wants.sort(pl.all()).rows()),
                    tuple(sorted(budgets.items()))))
        if key not in solved:
            solved[key] = best_allocation(items, wants, budgets)
        best = solved[key]
        rows.append({"run": run, "market": market, "optimal_cents": best.gains, "optimal_trades": best.trades,
                     "solver": best.status})
    out = pl.DataFrame(rows).join(realised, on=KEYS, how="left").with_columns(
        pl.col("realised_cents", "deals").fill_null(0))
    return out.with_columns(
        efficiency=pl.when(pl.col("optimal_cents") > 0).then(pl.col("realised_cents") / pl.col("optimal_cents"))
    ).sort(KEYS)


def surplus(data: RunData) -> pl.DataFrame:
    """Per run, market and participant: surplus as buyer (value minus price) and as seller (price minus reserve)."""
    as_buyer = data.deals.group_by([*KEYS, pl.col("buyer").alias("participant_id")]).agg(
        buyer_surplus=(pl.col("buyer_value") - pl.col("price")).sum())
    as_seller = data.deals.group_by([*KEYS, pl.col("seller").alias("participant_id")]).agg(
        seller_surplus=(pl.col("price") - pl.col("seller_reserve")).sum())
    return (
        data.participants.select(*KEYS, "participant_id", "tier")
        .join(as_buyer, on=[*KEYS, "participant_id"], how="left")
        .join(as_seller, on=[*KEYS, "participant_id"], how="left")
        .with_columns(pl.col("buyer_surplus", "seller_surplus").fill_null(0).cast(pl.Int64))
        .with_columns(surplus=pl.col("buyer_surplus") + pl.col("seller_surplus"))
    )


def surplus_by_tier(data: RunData) -> pl.DataFrame:
    """Per market and tier: mean surplus per participant (cents), as buyer, as seller and in total."""
    return surplus(data).group_by(["market", "tier"]).agg(
        participants=pl.len(), buyer_surplus=pl.col("buyer_surplus").mean(),
        seller_surplus=pl.col("seller_surplus").mean(), surplus=pl.col("surplus").mean(),
    ).sort(["market", "tier"])
