"""Outcomes per market and per tier: deals per participant, listings sold, prices against value.

Pure functions on the tables of :class:`analysis.load.RunData`. Money stays in
integer cents; ratios are floats. ``seller_premium`` is price minus the item's
reference value (what a seller gained over value); ``buyer_savings`` is value
minus price.
"""

from __future__ import annotations

import polars as pl

from analysis.load import RunData

KEYS = ["run", "market"]


def deal_outcomes(data: RunData) -> pl.DataFrame:
    """Every deal with price/value, seller premium and buyer savings (cents)."""
    return data.deals.with_columns(
        price_ratio=pl.col("price") / pl.col("value"),
        seller_premium=pl.col("price") - pl.col("value"),
        buyer_savings=pl.col("value") - pl.col("price"),
    )


def participant_outcomes(data: RunData) -> pl.DataFrame:
    """Per run, market and participant: deals, listings, items sold and money moved."""
    deals = data.deals
    sold = deals.group_by([*KEYS, pl.col("seller").alias("participant_id")]).agg(
        deals_as_seller=pl.len(), sold_cents=pl.col("price").sum(),
        premium_cents=(pl.col("price") - pl.col("value")).sum())
    bought = deals.group_by([*KEYS, pl.col("buyer").alias("participant_id")]).agg(
        deals_as_buyer=pl.len(), bought_cents=pl.col("price").sum(),
        savings_cents=(pl.col("value") - pl.col("price")).sum())
    listed = data.listings.group_by([*KEYS, pl.col("seller").alias("participant_id")]).agg(
        listings=pl.col("item_id").n_unique())
    out = (
        data.participants.join(sold, on=[*KEYS, "participant_id"], how="left")
        .join(bought, on=[*KEYS, "participant_id"], how="left")
        .join(listed, on=[*KEYS, "participant_id"], how="left")
        .with_columns(pl.col("deals_as_seller", "deals_as_buyer", "sold_cents", "bought_cents", "listings",
                             "premium_cents", "savings_cents").fill_null(0).cast(pl.Int64))
    )
    return out.with_columns(deals=pl.col("deals_as_seller") + pl.col("deals_as_buyer"))


def market_summary(data: RunData) -> pl.DataFrame:
    """Per run and market: participants, listings, deals, volume and mean price/value."""
    people = data.participants.group_by(KEYS).agg(participants=pl.len(),
                                                  tiers=pl.col("tier").unique().sort().str.join("+"))
    listings = data.listings.group_by(KEYS).agg(listings=pl.len())
    deals = deal_outcomes(data).group_by(KEYS).agg(
        deals=pl.len(), volume_cents=pl.col("price").sum(), price_ratio=pl.col("price_ratio").mean())
    return (
        people.join(listings, on=KEYS, how="left").join(deals, on=KEYS, how="left")
        .with_columns(pl.col("listings", "deals", "volume_cents").fill_null(0))
        .with_columns(deals_per_participant=2 * pl.col("deals") / pl.col("participants"))
        .sort(KEYS)
    )


def tier_summary(data: RunData, by_market: bool = True) -> pl.DataFrame:
    """Per tier (and market): deals per participant, share of listed items sold, price/value as
    seller and as buyer, mean seller premium and buyer savings per deal (cents)."""
    group = [*KEYS, "tier"] if by_market else ["tier"]
    people = participant_outcomes(data).group_by(group).agg(
        participants=pl.len(), deals_per_participant=pl.col("deals").mean(),
        listed=pl.col("listings").sum(), sold=pl.col("deals_as_seller").sum())
    deals = deal_outcomes(data)
    as_seller = deals.group_by([*group[:-1], pl.col("seller_tier").alias("tier")]).agg(
        price_ratio_as_seller=pl.col("price_ratio").mean(), seller_premium=pl.col("seller_premium").mean())
    as_buyer = deals.group_by([*group[:-1], pl.col("buyer_tier").alias("tier")]).agg(
        price_ratio_as_buyer=pl.col("price_ratio").mean(), buyer_savings=pl.col("buyer_savings").mean())
    return (
        people.join(as_seller, on=group, how="left").join(as_buyer, on=group, how="left")
        .with_columns(listings_sold=pl.when(pl.col("listed") > 0).then(pl.col("sold") / pl.col("listed")))
        .sort(group)
    )


def tier_pairs(data: RunData, by_market: bool = False) -> pl.DataFrame:
    """The 2x2 (or n x n) of seller tier against buyer tier: deals, mean price/value, premium."""
    group = [*KEYS, "seller_tier", "buyer_tier"] if by_market else ["seller_tier", "buyer_tier"]
    return deal_outcomes(data).group_by(group).agg(
        deals=pl.len(), mean_price_cents=pl.col("price").mean(), price_ratio=pl.col("price_ratio").mean(),
        seller_premium=pl.col("seller_premium").mean(),
    ).sort(group)


def mixed_markets(data: RunData) -> list[str]:
    """Markets in which more than one tier trades (where tiers meet on equal terms)."""
    counts = data.participants.group_by("market").agg(n=pl.col("tier").n_unique())
    return sorted(counts.filter(pl.col("n") > 1)["market"].to_list())
