"""What a trader sees (``Observation``) and what it answers (``Decision``).

These are the contract between the engine and any policy, rule-based or
model-backed. The engine builds observations from the state's indexes, never
by scanning every listing.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import chain, islice
from operator import attrgetter
from typing import Any

import msgspec
from pydantic import Field

from market.actions import Action
from market.domain import Frozen, Item, Listing, Offer, Participant, Record, Want
from market.events import Event, decode_hook, encode_hook
from market.records import build, shared_fields
from market.state import MarketState


class ListingView(Record, kw_only=True):
    """An open listing as a buyer sees it."""

    listing: Listing
    item: Item
    seller_name: str


class Observation(Record, kw_only=True, dict=True, gc=True):
    """One trader's view of its market at one moment (a msgspec record: one is built for every trader's
    every turn; ``dict=True`` keeps ``listings_by_kind`` beside its fields)."""

    market: str
    trader: str
    tier: str
    at: int  # simulated seconds since the start
    step: int  # how many times this trader has woken before
    principal: Participant
    balance: int
    escrow: int
    holdings: tuple[Item, ...]
    open_wants: tuple[Want, ...]
    my_listings: tuple[Listing, ...]
    unlisted: tuple[Item, ...]  # items of the principal's to sell, not yet listed
    market_listings: tuple[ListingView, ...]  # open listings matching open wants
    thread_listings: tuple[ListingView, ...]  # listings this trader's open offers are on
    incoming: tuple[Offer, ...]  # open offers addressed to this trader
    outgoing: tuple[Offer, ...]  # open offers this trader made
    news: tuple[Event, ...]  # what happened to this trader since its last turn

    @property
    def available(self) -> int:
        """Money the trader can still commit: its balance minus what its open offers hold in escrow (cents)."""
        return self.balance - self.escrow

    def listings_by_kind(self) -> Mapping[str, tuple[ListingView, ...]]:
        """``market_listings`` by their item's kind, each kind's in the order shown; worked out once
        per observation (``observe`` hands over the groups it shows, so a policy need not look at each view)."""
        kept = self.__dict__.get(_BY_KIND)
        if kept is None or kept[0] is not self.market_listings:  # (a copy with other listings works them out anew)
            groups: dict[str, list[ListingView]] = {}
            for view in self.market_listings:
                groups.setdefault(view.item.kind, []).append(view)
            kept = self.market_listings, {kind: tuple(views) for kind, views in groups.items()}
            # kept beside the fields, as functools.cached_property keeps its value: not a field, so it is
            # in no JSON, and == compares the fields alone
            self.__dict__[_BY_KIND] = kept
        return kept[1]

    def json_values(self, *, principal: bool = True) -> dict[str, Any]:
        """The observation as JSON values, fields that are None left out at every depth (as in the
        prompts' JSON); without the principal when ``principal`` is False."""
        # without the principal: a copy whose principal is None, which is left out like any other None
        shown = self if principal else msgspec.structs.replace(self, principal=None)
        return _without_none(msgspec.to_builtins(shown, enc_hook=encode_hook))  # type: ignore[no-any-return]

    @classmethod
    def from_json_values(cls, values: Mapping[str, Any]) -> Observation:
        """The observation these JSON values give (what ``json_values`` wrote), validated."""
        return msgspec.convert(values, cls, dec_hook=decode_hook)


def _without_none(value: Any) -> Any:
    """``value`` with every None-valued key of its objects left out (a record's optional field unset); its
    objects and arrays are ``msgspec.to_builtins``'s own dicts, lists and tuples (a tuple becomes a list).
    Only those are entered (by exact type: a model call's turn does this for some 500 values)."""
    if type(value) is dict:
        out = {}
        for key, item in value.items():
            if item is not None:
                kind = type(item)
                out[key] = _without_none(item) if kind is dict or kind is list or kind is tuple else item
        return out
    if type(value) is list or type(value) is tuple:
        return [_without_none(item) if type(item) in _NESTED else item for item in value]
    return value


_NESTED = (dict, list, tuple)


_BY_KIND = "_listings_by_kind"


class Decision(Frozen):
    """A trader's answer: actions, in order, and an optional private note."""

    actions: tuple[Action, ...] = ()
    note: str | None = Field(None, max_length=2000)


def decided(actions: tuple[Action, ...]) -> Decision:
    """``Decision(actions=actions)`` for actions that are records already (each validated as it was
    made), without validating them again: a rule-based policy answers every turn with one."""
    return build(Decision, {"actions": actions, "note": None}, _ACTIONS_SET)  # as validation: only actions given


def observe(
    state: MarketState,
    market: str,
    trader: str,
    tier: str,
    at: int,
    step: int,
    news: list[Event],
    listings_per_want: int = 12,
    items_from: Mapping[str, int] | None = None,
) -> Observation:
    """Build ``trader``'s observation from the state's indexes. ``items_from`` gives when each of the
    principal's items is put up for sale (an item not named is from the start); until then it is not
    among ``unlisted``."""
    holdings, open_wants = _holdings(state, trader)
    my_listings, unlisted = _listings(state, trader, at, items_from, holdings)
    thread_listings, incoming, outgoing = _offers(state, trader, at)
    newest: dict[tuple[str, int], tuple[int, tuple[ListingView, ...]]]
    newest = state.cache.setdefault("newest_views", {})  # type: ignore[assignment]
    changes = state.kind_changes
    # none of these is the trader's own: what it lists it owns, and it wants no kind it owns
    shown: list[tuple[ListingView, ...]] = []
    by_kind: dict[str, tuple[ListingView, ...]] = {}  # Observation.listings_by_kind: every view is of its want's kind
    for want in open_wants:
        kind = want.kind
        known = newest.get((kind, listings_per_want))
        if known is None or known[0] != changes.get(kind, 0):
            known = _newest_views(state, kind, listings_per_want)
        views = known[1]
        shown.append(views)
        if views:
            by_kind[kind] = by_kind[kind] + views if kind in by_kind else views
    market_listings = shown[0] if len(shown) == 1 else tuple(chain.from_iterable(shown))
    obs = Observation(
        market=market, trader=trader, tier=tier, at=at, step=step,
        principal=state.participants[trader], balance=state.balance[trader], escrow=state.escrow[trader],
        holdings=holdings, open_wants=open_wants, my_listings=my_listings, unlisted=unlisted,
        market_listings=market_listings,
        thread_listings=thread_listings, incoming=incoming, outgoing=outgoing, news=tuple(news) if news else (),
    )
    obs.__dict__[_BY_KIND] = (market_listings, by_kind)
    return obs


# Each of a trader's own parts is kept in the state's cache with the counts of changes it follows
# (``MarketState.holding_changes`` and the like) and, where time matters, the moments it holds for.

Holdings = tuple[tuple[Item, ...], tuple[Want, ...]]


def _holdings(state: MarketState, trader: str) -> Holdings:
    """What the trader holds and the principal's wants of kinds it holds none of."""
    kept: dict[str, tuple[int, Holdings]] = state.cache.setdefault("holdings", {})  # type: ignore[assignment]
    changes = state.holding_changes.get(trader, 0)
    known = kept.get(trader)
    if known is not None and known[0] == changes:
        return known[1]
    holdings = tuple(map(state.items.__getitem__, state.items_by_owner.get(trader, ())))
    owned_kinds = set(map(_kind, holdings))
    parts = holdings, tuple(w for w in state.participants[trader].wants if w.kind not in owned_kinds)
    kept[trader] = (changes, parts)
    return parts


Listings = tuple[tuple[Listing, ...], tuple[Item, ...]]


def _listings(
    state: MarketState, trader: str, at: int, items_from: Mapping[str, int] | None, holdings: tuple[Item, ...]
) -> Listings:
    """The trader's open listings, and the principal's items it holds, has not listed, and may sell by
    ``at`` (``items_from``); kept until one of those items is put up for sale."""
    kept: dict[str, tuple[tuple[int, int, Mapping[str, int] | None], int, int, Listings]]
    kept = state.cache.setdefault("listings", {})  # type: ignore[assignment]
    # (a tuple compares its items by identity first: the same items_from object costs nothing)
    changes = (state.holding_changes.get(trader, 0), state.listing_changes.get(trader, 0), items_from)
    known = kept.get(trader)
    if known is not None and known[0] == changes and known[1] <= at < known[2]:
        return known[3]
    owners: dict[str, frozenset[str]] = state.cache.setdefault("own_items", {})  # type: ignore[assignment]
    own_items = owners.get(trader)
    if own_items is None:  # a principal never changes: what they came to sell is known once
        own_items = owners[trader] = frozenset(item.id for item in state.participants[trader].items)
    listed = state.open_listing_of_item
    unlisted = tuple(item for item in holdings if item.id in own_items and item.id not in listed)
    fresh_until = _NEVER
    if items_from and unlisted:  # its agent sees an item only once its person puts it up
        coming = [items_from.get(item.id, 0) for item in unlisted]
        later = [when for when in coming if when > at]
        if later:
            fresh_until = min(later)
            unlisted = tuple(item for item, when in zip(unlisted, coming, strict=True) if when <= at)
    parts = tuple(map(state.listings.__getitem__, state.open_listings_by_seller.get(trader, ()))), unlisted
    kept[trader] = (changes, at, fresh_until, parts)
    return parts


Offers = tuple[tuple[ListingView, ...], tuple[Offer, ...], tuple[Offer, ...]]


def _offers(state: MarketState, trader: str, at: int) -> Offers:
    """The views of the listings the trader's open offers are on, and those offers to and from it;
    kept while every one is live (until the exchange ends it, an offer past its time is not shown)."""
    kept: dict[str, tuple[int, int, int, Offers]] = state.cache.setdefault("offers", {})  # type: ignore[assignment]
    changes = state.offer_changes.get(trader, 0)
    known = kept.get(trader)
    if known is not None and known[0] == changes and known[1] <= at < known[2]:
        return known[3]
    open_offers = list(map(state.offers.__getitem__, state.open_offers_by_party.get(trader, ())))
    live = [o for o in open_offers if o.expires_at > at]
    threads = {o.listing_id: None for o in live}
    parts = (
        tuple(_view(state, lid) for lid in threads),
        tuple(o for o in live if o.recipient == trader),
        tuple(o for o in live if o.proposer == trader),
    )
    fresh_until = min((o.expires_at for o in open_offers), default=_NEVER)
    if at < fresh_until:  # (else they could never be reused)
        kept[trader] = (changes, at, fresh_until, parts)
    return parts


_kind = attrgetter("kind")
_NEVER = 1 << 62


def _newest_views(state: MarketState, kind: str, count: int) -> tuple[int, tuple[ListingView, ...]]:
    """The views of the ``count`` newest open listings of ``kind``, newest first, with the count of
    the kind's changes they were built at (``MarketState.kind_changes``); kept in the state's cache."""
    newest = islice(reversed(state.open_listings_by_kind.get(kind, {})), count)
    built = (state.kind_changes.get(kind, 0), tuple(_view(state, lid) for lid in newest))
    state.cache.setdefault("newest_views", {})[kind, count] = built  # type: ignore[index]
    return built


_ACTIONS_SET = shared_fields(frozenset({"actions"}))  # the fields set of every ``decided`` record


def _view(state: MarketState, listing_id: str) -> ListingView:
    """The listing's view, built once per version of the listing."""
    listing = state.listings[listing_id]
    views: dict[str, ListingView] = state.cache.setdefault("views", {})  # type: ignore[assignment]
    view = views.get(listing_id)
    if view is None or view.listing is not listing:
        view = views[listing_id] = ListingView(
            listing=listing, item=state.items[listing.item_id], seller_name=state.participants[listing.seller].name
        )
    return view
