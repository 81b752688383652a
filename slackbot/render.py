"""From ledger events to the posts a market's channel shows (pure, no IO).

A ``Renderer`` keeps each market's state (rebuilt from the same events) to
name sellers and items, and turns every event into zero or more ``Post``s.
Each post has a stable ``key`` derived from the ledger sequence number, so a
restarted bot renders the same keys and the poster skips what it already
posted. Listings are top-level messages; offers, counters, haggling, price
changes and deals are replies in the listing's thread; a deal is also
broadcast to the channel; a digest closes each simulated day.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from market.clock import DAY
from market.domain import OfferStatus
from market.events import (
    DealClosed,
    Event,
    ItemListed,
    ListingDelisted,
    ListingRepriced,
    MarketOpened,
    MessageSent,
    OfferEnded,
    OfferMade,
    ParticipantJoined,
)
from market.state import MarketState
from slackbot import blocks
from slackbot.blocks import DayStats, Msg


@dataclass(frozen=True)
class Post:
    """One message to post: where, in which thread, and its stable key."""

    key: str
    market: str
    msg: Msg
    thread: str | None = None  # key of the parent post
    broadcast: bool = False  # a thread reply also shown in the channel
    at: int = 0  # simulated second of the event behind it
    edit: str | None = None  # key of an earlier post this one replaces (chat.update)
    ephemeral: str | None = None  # a user id: shown to that person only (chat.postEphemeral)


def listing_key(market: str, listing_id: str) -> str:
    """The key of a listing's top-level post in ``market``, the parent of its thread."""
    return f"{market}:listing:{listing_id}"


@dataclass
class _MarketView:
    state: MarketState = field(default_factory=MarketState)
    day: int | None = None
    stats: DayStats = field(default_factory=DayStats)


class Renderer:
    """Turns (seq, market, event) into posts; ``show_tiers`` reveals agents' tiers."""

    def __init__(self, show_tiers: bool = False) -> None:
        self.show_tiers = show_tiers
        self.markets: dict[str, _MarketView] = {}

    def state(self, market: str) -> MarketState:
        """``market``'s state as rendered so far (an empty one for a market not seen yet)."""
        return self.markets.setdefault(market, _MarketView()).state

    def feed(self, seq: int, market: str, event: Event) -> list[Post]:
        """Apply ledger record ``seq`` (``event`` in ``market``) and return the posts it makes: the previous
        day's digest first when a new day began, then the event's own post (none for the opening roster, a
        countered offer (its counter-offer is the news), a refused action or a failed turn)."""
        view = self.markets.setdefault(market, _MarketView())
        posts: list[Post] = []
        day = event.at // DAY
        if view.day is not None and day > view.day and not isinstance(event, MarketOpened):
            posts += self._digest(market, view)
        if view.day is None or day > view.day:
            view.day, view.stats = day, DayStats()
        old_ask = view.state.listings[event.listing_id].ask if isinstance(event, ListingRepriced) else 0
        view.state.evolve(event)
        posts += self._posts(seq, market, event, view, old_ask)
        return posts

    def finish(self) -> list[Post]:
        """Digests for each market's last day (when the run is over)."""
        return [p for market, view in self.markets.items() if view.day is not None
                for p in self._digest(market, view)]

    def _digest(self, market: str, view: _MarketView) -> list[Post]:
        assert view.day is not None
        return [Post(key=f"{market}:digest:{view.day}", market=market,
                     msg=blocks.digest(market, view.day + 1, view.stats), at=(view.day + 1) * DAY - 1)]

    def _name(self, state: MarketState, pid: str) -> str:
        person = state.participants.get(pid)
        return person.name if person else pid

    def _tier(self, state: MarketState, pid: str) -> str | None:
        person = state.participants.get(pid)
        return person.tier if (self.show_tiers and person and person.tier) else None

    def _posts(self, seq: int, market: str, event: Event, view: _MarketView, old_ask: int) -> list[Post]:
        state, stats, key = view.state, view.stats, f"{market}:{seq}"
        at = event.at
        match event:
            case MarketOpened():
                return [Post(key, market, blocks.market_opened(market, 0), at=at)]
            case ParticipantJoined(participant=p):
                stats.joined += 1
                if event.at == 0:
                    return []  # the opening roster is not news
                return [Post(key, market, blocks.participant_joined(p.name, self._tier(state, p.id)), at=at)]
            case ItemListed(listing=lst):
                stats.listings += 1
                msg = blocks.listing(lst, state.items[lst.item_id], self._name(state, lst.seller),
                                     self._tier(state, lst.seller))
                return [Post(listing_key(market, lst.id), market, msg, at=at)]
            case ListingRepriced(listing_id=lid, ask=ask):
                msg = blocks.repriced(state.listings[lid], old_ask, ask)
                return [Post(key, market, msg, thread=listing_key(market, lid), at=at)]
            case ListingDelisted(listing_id=lid):
                lst = state.listings[lid]
                msg = blocks.delisted(lst, self._name(state, lst.seller))
                return [Post(key, market, msg, thread=listing_key(market, lid), at=at)]
            case OfferMade(offer=off):
                stats.offers += 1
                msg = blocks.offer(off, self._name(state, off.proposer), self._name(state, off.recipient))
                return [Post(key, market, msg, thread=listing_key(market, off.listing_id), at=at)]
            case OfferEnded(offer_id=oid, listing_id=lid, status=status, message=note):
                if status is OfferStatus.COUNTERED:
                    return []  # the counter-offer itself is the news
                off = state.offers[oid]
                actor = off.proposer if status is OfferStatus.WITHDRAWN else off.recipient
                msg = blocks.offer_ended(off, status, self._name(state, actor), note)
                return [Post(key, market, msg, thread=listing_key(market, lid), at=at)]
            case MessageSent(message=m):
                to = self._name(state, m.to) if m.to else None
                msg = blocks.chat(self._name(state, m.sender), m.text, to)
                return [Post(key, market, msg, thread=listing_key(market, m.listing_id), at=at)]
            case DealClosed(deal=d, message=note):
                stats.deals += 1
                stats.volume += d.price
                item = state.items[d.item_id]
                stats.top.append((item.title, d.price))
                msg = blocks.deal(d, item, self._name(state, d.seller), self._name(state, d.buyer), note)
                return [Post(key, market, msg, thread=listing_key(market, d.listing_id), broadcast=True, at=at)]
        return []


def render_all(
    records: Iterable[tuple[int, str, Event]], show_tiers: bool = False, finished: bool = True
) -> list[Post]:
    """Every post of a sequence of ledger records (for tests and benchmarks)."""
    renderer = Renderer(show_tiers)
    posts = [p for seq, market, event in records for p in renderer.feed(seq, market, event)]
    return posts + (renderer.finish() if finished else [])
