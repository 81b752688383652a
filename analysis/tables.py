"""A run's events as tables: the rows an analyst loads and an export writes.

Every table is projected through the exchange's own state: each market's
events go through :meth:`market.state.MarketState.evolve`, and the rows are
read from that state (statuses, final asks, owners), with only what the state
does not keep (when a listing or offer closed, who ended an offer and what they
said, refused actions, failed turns) taken from the events themselves. Refused
actions and failed turns are kept. The negotiation is kept whole: every offer
and counter with its text, every text anyone wrote (``messages``: the offer,
counter, accept and reject texts and listing descriptions as well as free
messages) and each listing's ``transcripts``, turn by turn in ledger order.

Money columns are integer cents (``Int64``); times are simulated seconds.
The column lists are documented in ``docs/data.md``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import polars as pl

from market import hourly
from market.clock import DAY
from market.domain import OfferStatus
from market.events import (
    ActionRejected,
    AgentFailed,
    DealClosed,
    Event,
    ItemListed,
    ListingDelisted,
    ListingRepriced,
    MessageSent,
    OfferEnded,
    OfferMade,
)
from market.state import MarketState

SCHEMAS: dict[str, dict[str, Any]] = {
    "participants": {"run": pl.Utf8, "market": pl.Utf8, "participant_id": pl.Utf8, "name": pl.Utf8,
                     "tier": pl.Utf8, "budget": pl.Int64, "items": pl.Int64, "wants": pl.Int64},
    "items": {"run": pl.Utf8, "market": pl.Utf8, "item_id": pl.Utf8, "kind": pl.Utf8, "title": pl.Utf8,
              "category": pl.Utf8, "condition": pl.Utf8, "value": pl.Int64, "owner": pl.Utf8,
              "reserve": pl.Int64},
    "wants": {"run": pl.Utf8, "market": pl.Utf8, "participant_id": pl.Utf8, "kind": pl.Utf8,
              "title": pl.Utf8, "max_price": pl.Int64},
    "listings": {"run": pl.Utf8, "market": pl.Utf8, "listing_id": pl.Utf8, "item_id": pl.Utf8,
                 "seller": pl.Utf8, "first_ask": pl.Int64, "ask": pl.Int64, "opened_at": pl.Int64,
                 "status": pl.Utf8, "closed_at": pl.Int64},
    "offers": {"run": pl.Utf8, "market": pl.Utf8, "offer_id": pl.Utf8, "listing_id": pl.Utf8,
               "proposer": pl.Utf8, "buyer": pl.Utf8, "seller": pl.Utf8, "amount": pl.Int64,
               "round": pl.Int64, "made_at": pl.Int64, "status": pl.Utf8, "ended_at": pl.Int64,
               "recipient": pl.Utf8, "counter_of": pl.Utf8, "expires_at": pl.Int64, "text": pl.Utf8,
               "ended_by": pl.Utf8, "reply_text": pl.Utf8, "deal_id": pl.Utf8},
    "deals": {"run": pl.Utf8, "market": pl.Utf8, "deal_id": pl.Utf8, "listing_id": pl.Utf8,
              "offer_id": pl.Utf8, "item_id": pl.Utf8, "seller": pl.Utf8, "buyer": pl.Utf8,
              "price": pl.Int64, "at": pl.Int64},
    "messages": {"run": pl.Utf8, "market": pl.Utf8, "listing_id": pl.Utf8, "sender": pl.Utf8,
                 "to": pl.Utf8, "text": pl.Utf8, "at": pl.Int64, "kind": pl.Utf8, "offer_id": pl.Utf8},
    "transcripts": {"run": pl.Utf8, "market": pl.Utf8, "listing_id": pl.Utf8, "seq": pl.Int64, "at": pl.Int64,
                    "kind": pl.Utf8, "offer_id": pl.Utf8, "sender": pl.Utf8, "to": pl.Utf8, "amount": pl.Int64,
                    "text": pl.Utf8},
    "rejections": {"run": pl.Utf8, "market": pl.Utf8, "at": pl.Int64, "actor": pl.Utf8, "tier": pl.Utf8,
                   "action_type": pl.Utf8, "action": pl.Utf8, "code": pl.Utf8, "reason": pl.Utf8},
    "failures": {"run": pl.Utf8, "market": pl.Utf8, "at": pl.Int64, "actor": pl.Utf8, "tier": pl.Utf8,
                 "kind": pl.Utf8, "reason": pl.Utf8},
}
"""The tables projected from the ledger, column by column (deals before :func:`enrich_deals`)."""

DEAL_EXTRAS: dict[str, Any] = {
    "kind": pl.Utf8, "title": pl.Utf8, "condition": pl.Utf8, "value": pl.Int64, "seller_tier": pl.Utf8,
    "buyer_tier": pl.Utf8, "buyer_value": pl.Int64, "seller_reserve": pl.Int64,
}
"""Columns :func:`enrich_deals` adds to every deal."""

TABLES = tuple(SCHEMAS)

_ENDINGS = {OfferStatus.REJECTED: "reject", OfferStatus.WITHDRAWN: "withdraw", OfferStatus.EXPIRED: "expire",
            OfferStatus.CLOSED: "close"}
"""The transcript turn of each way an offer ends without a deal (a counter's turn is the counter offer itself)."""


class MarketTables:
    """One market's rows, read from its :class:`MarketState` as every event evolves it."""

    def __init__(self, run: str, market: str) -> None:
        self.run, self.market = run, market
        self.state = MarketState()
        self.closed_at: dict[str, int] = {}
        self.first_ask: dict[str, int] = {}
        self.ended_at: dict[str, int] = {}
        self.ended_by: dict[str, str] = {}
        self.reply_text: dict[str, str] = {}
        self.deal_of: dict[str, str] = {}
        self.turns: dict[str, list[tuple[Any, ...]]] = {}  # per listing, in ledger order
        self.rows: dict[str, list[tuple[Any, ...]]] = {"rejections": [], "failures": []}

    def turn(self, listing_id: str, at: int, kind: str, offer_id: str | None, sender: str | None,
             to: str | None, amount: int | None, text: str | None) -> None:
        """Note one turn of a listing's transcript (an empty text is kept as none said)."""
        turns = self.turns.setdefault(listing_id, [])
        turns.append((self.run, self.market, listing_id, len(turns) + 1, at, kind, offer_id, sender, to, amount,
                      text or None))

    def evolve(self, event: Event) -> None:
        """Apply ``event`` to the state, noting what the state does not keep."""
        state = self.state
        state.evolve(event)
        keys = (self.run, self.market)
        match event:
            case ListingDelisted(listing_id=lid, at=at):
                self.closed_at[lid] = at
                self.turn(lid, at, "delist", None, state.listings[lid].seller, None, None, None)
            case ListingRepriced(listing_id=lid, ask=ask, at=at):
                self.turn(lid, at, "reprice", None, state.listings[lid].seller, None, ask, None)
            case OfferMade(offer=o, at=at):
                self.turn(o.listing_id, at, "offer" if o.counter_of is None else "counter", o.id, o.proposer,
                          o.recipient, o.amount, o.message)
            case OfferEnded(offer_id=oid, listing_id=lid, status=status, message=text, at=at):
                self.ended_at[oid] = at
                offer = state.offers[oid]
                # a recipient answers (reject, counter), a proposer withdraws; the market's clock or a sale
                # ends the rest (expired, closed), by no one
                by = offer.proposer if status is OfferStatus.WITHDRAWN else \
                    offer.recipient if status in (OfferStatus.REJECTED, OfferStatus.COUNTERED) else None
                if by is not None:
                    self.ended_by[oid], self.reply_text[oid] = by, text
                if status in _ENDINGS:
                    to = None if by is None else offer.recipient if by == offer.proposer else offer.proposer
                    self.turn(lid, at, _ENDINGS[status], oid, by, to, offer.amount, text)
            case DealClosed(deal=deal, message=text, at=at):
                self.closed_at[deal.listing_id] = at
                self.ended_at[deal.offer_id] = at
                offer = state.offers[deal.offer_id]
                self.ended_by[offer.id], self.reply_text[offer.id], self.deal_of[offer.id] = \
                    offer.recipient, text, deal.id
                self.turn(deal.listing_id, at, "accept", offer.id, offer.recipient, offer.proposer, offer.amount,
                          text)
                self.turn(deal.listing_id, at, "deal", offer.id, deal.seller, deal.buyer, deal.price, None)
            case ActionRejected(actor=actor, action=action, code=code, reason=reason, at=at):
                person = state.participants.get(actor)
                self.rows["rejections"].append((
                    *keys, at, actor, person.tier if person else None, action.type,
                    json.dumps(action.model_dump(mode="json"), sort_keys=True, separators=(",", ":")),
                    code.value, reason))
            case AgentFailed(actor=actor, tier=tier, kind=kind, reason=reason, at=at):
                self.rows["failures"].append((*keys, at, actor, tier, kind, reason))
            case MessageSent(message=m, at=at):
                self.turn(m.listing_id, at, "message", None, m.sender, m.to, None, m.text)
            case ItemListed(listing=listing, at=at):
                self.first_ask[listing.id] = listing.ask
                self.turn(listing.id, at, "listing", None, listing.seller, None, listing.ask, listing.description)
            case _:
                pass

    def tables(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every table's rows as the state stands now."""
        state, keys = self.state, (self.run, self.market)
        out: dict[str, list[tuple[Any, ...]]] = {name: [] for name in SCHEMAS}
        for p in state.participants.values():
            out["participants"].append((*keys, p.id, p.name, p.tier, p.budget, len(p.items), len(p.wants)))
            for item in p.items:
                out["items"].append((*keys, item.id, item.kind, item.title, item.category, item.condition.value,
                                     item.value, p.id, p.reserves.get(item.id)))
            for want in p.wants:
                out["wants"].append((*keys, p.id, want.kind, want.title, want.max_price))
        for li in state.listings.values():
            out["listings"].append((*keys, li.id, li.item_id, li.seller, self.first_ask[li.id], li.ask,
                                    li.opened_at, li.status.value, self.closed_at.get(li.id)))
        for o in state.offers.values():
            out["offers"].append((*keys, o.id, o.listing_id, o.proposer, o.buyer, o.seller, o.amount, o.round,
                                  o.made_at, o.status.value, self.ended_at.get(o.id), o.recipient, o.counter_of,
                                  o.expires_at, o.message or None, self.ended_by.get(o.id),
                                  self.reply_text.get(o.id) or None, self.deal_of.get(o.id)))
        for d in state.deals:
            out["deals"].append((*keys, d.id, d.listing_id, d.offer_id, d.item_id, d.seller, d.buyer, d.price,
                                 d.at))
        for turns in self.turns.values():  # listing by listing, in the order they were first listed
            out["transcripts"].extend(turns)
            out["messages"].extend((*keys, lid, sender, to, text, at, kind, oid)
                                   for _, _, lid, _, at, kind, oid, sender, to, _, text in turns if text is not None)
        for name, rows in self.rows.items():
            out[name] = list(rows)
        return out


def project(records: Iterable[tuple[str, Event]], run: str) -> dict[str, pl.DataFrame]:
    """Every table of one run from its ``(market, event)`` records in ledger order (deals not yet enriched)."""
    markets: dict[str, MarketTables] = {}
    for market, event in records:
        tables = markets.get(market)
        if tables is None:
            tables = markets[market] = MarketTables(run, market)
        tables.evolve(event)
    rows: dict[str, list[tuple[Any, ...]]] = {name: [] for name in SCHEMAS}
    for tables in markets.values():
        for name, part in tables.tables().items():
            rows[name].extend(part)
    return {name: pl.DataFrame(rows[name], schema=SCHEMAS[name], orient="row") for name in SCHEMAS}


def enrich_deals(frames: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Every deal with the item's kind, title, condition and value, both parties' tiers, the seller's reserve
    and the buyer's value.

    ``buyer_value`` is the buyer's most-they-would-pay for the item's kind (0 when
    they did not want it, or when an earlier purchase already filled that want).
    ``seller_reserve`` is the seller's reserve for the item (its reference value
    when none was given). The exchange sells every item once, so the seller is
    always the item's first owner.
    """
    keys = ["run", "market"]
    items = frames["items"].select(*keys, "item_id", "kind", "title", "condition", "value", "reserve")
    tiers = frames["participants"].select(*keys, "participant_id", "tier")
    wants = frames["wants"].select(*keys, pl.col("participant_id").alias("buyer"), "kind",
                                   pl.col("max_price").alias("want_max"))
    out = (
        frames["deals"].join(items, on=[*keys, "item_id"], how="left")
        .join(tiers.rename({"participant_id": "seller", "tier": "seller_tier"}), on=[*keys, "seller"], how="left")
        .join(tiers.rename({"participant_id": "buyer", "tier": "buyer_tier"}), on=[*keys, "buyer"], how="left")
        .join(wants, on=[*keys, "buyer", "kind"], how="left")
        .sort([*keys, "at", "deal_id"])
    )
    first_fill = pl.int_range(pl.len()).over([*keys, "buyer", "kind"]) == 0
    return out.with_columns(
        buyer_value=pl.when(first_fill & pl.col("want_max").is_not_null()).then(pl.col("want_max")).otherwise(0),
        seller_reserve=pl.coalesce("reserve", "value"),
    ).drop("want_max", "reserve").with_columns(pl.col("buyer_value", "seller_reserve").cast(pl.Int64))


def hourly_schema(tiers: Sequence[str]) -> dict[str, Any]:
    """The ``hourly`` table's columns: ``run``, then the engine's hourly reporters (:mod:`market.hourly`)."""
    return {"run": pl.Utf8, **{c: pl.Utf8 if c == "market" else pl.Int64 for c in hourly.columns(tiers)}}


def hourly_series(records: Iterable[tuple[str, Event]], tiers: Sequence[str], duration: int, run: str) -> pl.DataFrame:
    """Per market and simulated hour: open listings and offers, cumulative deals and volume, money per tier.

    The rows the engine's hourly DataCollector takes while it runs, taken with the same reporters
    (:mod:`market.hourly`) from the run's ``(market, event)`` records in ledger order. Money per
    tier is settled money (budget plus sales minus purchases), in cents. Sorted by market, then hour.
    """
    rows = [{"run": run, **row} for row in hourly.rows_from_events(records, tiers, duration)]
    return pl.DataFrame(rows, schema=hourly_schema(tiers), orient="row").sort(["market", "hour"], maintain_order=True)


DAILY_SCHEMA: dict[str, Any] = {"run": pl.Utf8, "market": pl.Utf8, "day": pl.Int64, "new_listings": pl.Int64,
                                "deals": pl.Int64, "volume": pl.Int64}
"""The week over time: per run, market and simulated day (1 = the first), what came up and what closed."""


def daily_series(frames: dict[str, pl.DataFrame], days: int) -> pl.DataFrame:
    """Per run, market and simulated day: listings opened, deals closed and money traded (cents) that day.

    Every day of the ``days``-day run has a row, idle days included (zeros). Rebuilt from the
    ``participants``, ``listings`` and ``deals`` tables (their ``run`` column: one run or many).
    """
    keys = ["run", "market"]
    grid = frames["participants"].select(keys).unique().join(
        pl.DataFrame({"day": list(range(1, days + 1))}, schema={"day": pl.Int64}), how="cross")

    def day(column: str) -> pl.Expr:
        return (pl.col(column) // DAY + 1).clip(upper_bound=days).cast(pl.Int64).alias("day")

    listed = frames["listings"].group_by(*keys, day("opened_at")).agg(new_listings=pl.len())
    closed = frames["deals"].group_by(*keys, day("at")).agg(deals=pl.len(), volume=pl.col("price").sum())
    out = (grid.join(listed, on=[*keys, "day"], how="left").join(closed, on=[*keys, "day"], how="left")
           .with_columns(pl.col("new_listings", "deals", "volume").fill_null(0)))
    return out.select([pl.col(c).cast(t) for c, t in DAILY_SCHEMA.items()]).sort([*keys, "day"])
