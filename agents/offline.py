"""Rule-based negotiators: one behaviour, tiers differ only in their capabilities; no network, no key.

Every offline trader follows the same negotiation behaviour (:class:`OfflinePolicy`). A tier is a
:class:`Profile`: a set of capability parameters, each named for what it does in the market (how
well it estimates what an item is worth, where it opens, how far it goes, how it concedes, how many
rounds it persists, how much of the market it looks at, whether it counters, ...). No tier has a rule
of its own: the code never asks which tier it is, only what the profile's values are.

The built-in profiles (``frontier``, ``small``) are modelling assumptions, not findings; a scenario
declares its own under ``profiles:`` and the calibration fits them. Neither ever goes beyond its
principal's limits: the budget, the most they would pay for a want, the reserve price of what they sell.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from operator import attrgetter
from typing import Any

from agents import messages
from agents.base import BackendContext, Decision, ListingView, Observation
from market.actions import Accept, Action, Counter, ListItem, MakeOffer, Reject, Reprice
from market.backends import Policy
from market.clock import HOUR
from market.domain import Item, Listing, Offer, Participant
from market.observation import decided
from market.randomness import STREAMS, Streams
from market.records import trusted
from market.scenario import ProfileSpec, TierSettings


@dataclass(frozen=True)
class Profile:
    """One tier's capabilities: the values the shared behaviour runs on. Ratios are fractions of a price."""

    name: str
    # what it knows
    value_noise: float  # how well it estimates what an item is worth: relative error, uniform +/-
    # where it opens and how far it goes
    anchor: tuple[float, float]  # its ask when it lists, as a multiple of its estimate
    opening_bid: tuple[float, float]  # its first bid, as a fraction of the ask (of what it would pay, above it)
    value_cap: float  # the most it pays, as a multiple of its estimate (within the mandate)
    ask_ceiling: float | None  # bids on a listing asking at most this multiple of what it would pay (None: any)
    # how it haggles
    concession: float  # share of the gap to the other side it gives up each time it answers
    accept_within: float  # takes an offer within its limits when the gap to its own position is at most this
    #                       share of the higher of the two (1: the first offer within its limits)
    counters: bool  # answers an offer it does not take with a counter-offer (otherwise it declines)
    max_rounds: int  # rounds it haggles before it settles within its limits or walks away
    persistent: bool  # bids again for a want after a bid was declined or lapsed (otherwise it gives the want up)
    # how much of the market it attends to
    attention: int  # listings of a kind it compares per want
    diligence: float  # chance it follows up each opportunity on a turn (misses the rest)
    threads_per_turn: int | None  # offers it answers per turn (None: all of them)
    bids_per_turn: int | None  # new bids it places per turn (None: one per open want)
    listings_per_turn: int  # items it puts up per turn
    reprice_after_hours: float | None  # lowers the ask of a listing nobody bid on after this long (None: never)


CAPABILITIES: dict[str, str] = {
    "value_noise": "how well it estimates what an item is worth (relative error)",
    "anchor": "where it opens as a seller (ask as a multiple of its estimate)",
    "opening_bid": "where it opens as a buyer (fraction of the ask, or of what it would pay)",
    "value_cap": "the most it pays (multiple of its estimate, within the mandate)",
    "ask_ceiling": "the highest ask it still bids on (multiple of what it would pay; none: any)",
    "concession": "how fast it concedes (share of the gap per answer)",
    "accept_within": "how close an offer must be to its position to take it (1: the first within its limits)",
    "counters": "whether it counters an offer it does not take",
    "max_rounds": "how many rounds it persists in one negotiation",
    "persistent": "whether it tries again for a want after a failed bid",
    "attention": "how many listings of a kind it compares",
    "diligence": "how often it follows up an opportunity",
    "threads_per_turn": "how many offers it answers per turn",
    "bids_per_turn": "how many new bids it places per turn",
    "listings_per_turn": "how many items it lists per turn",
    "reprice_after_hours": "when it lowers a stale ask",
}
"""Every capability a profile sets, in the market's words (the calibration page and the fixed-or-fitted check
read these)."""
NO_LIMIT = {"threads_per_turn": "all", "bids_per_turn": "all", "reprice_after_hours": "never", "ask_ceiling": "any"}
"""How a profile's ``None`` (no limit) is written in a scenario's ``profiles:``."""

PROFILES: dict[str, Profile] = {
    "frontier": Profile(
        name="frontier", value_noise=0.05, anchor=(1.15, 1.35), opening_bid=(0.7, 0.85), value_cap=1.15,
        ask_ceiling=None, concession=0.4, accept_within=0.05, counters=True, max_rounds=5, persistent=True,
        attention=12, diligence=0.95, threads_per_turn=None, bids_per_turn=None, listings_per_turn=3,
        reprice_after_hours=12,
    ),
    "small": Profile(
        name="small", value_noise=0.25, anchor=(0.95, 1.15), opening_bid=(0.9, 1.0), value_cap=1.6,
        ask_ceiling=1.1, concession=0.6, accept_within=1.0, counters=False, max_rounds=2, persistent=False,
        attention=1, diligence=0.65, threads_per_turn=2, bids_per_turn=1, listings_per_turn=2,
        reprice_after_hours=None,
    ),
}


@dataclass
class _Memory:
    """What a negotiator remembers of one trader (in one market) between turns."""

    bids: dict[str, str] = field(default_factory=dict)  # listing -> kind it bid for
    given_up: set[str] = field(default_factory=set)  # wants it gave up on
    # listing id -> (the version of the listing it last looked at, the ask it lowers that to, 0: none)
    reprices: dict[str, tuple[Listing, int]] = field(default_factory=dict)
    principal: Participant | None = None  # whose limits ``limits`` holds
    limits: dict[str, int] = field(default_factory=dict)  # kind -> most the principal pays (first want of it)

    def limit_for(self, principal: Participant, kind: str) -> int:
        """``principal.want_for(kind).max_price`` (0 without such a want), looked up once per principal."""
        if principal is not self.principal:
            self.principal = principal
            self.limits = {}
            for want in principal.wants:
                self.limits.setdefault(want.kind, want.max_price)
        return self.limits.get(kind, 0)


class OfflinePolicy(Policy):
    """A rule-based negotiator following one ``Profile``."""

    def __init__(self, profile: Profile, seed: int = 0, streams: Streams = STREAMS[1]) -> None:
        self.profile = profile
        self.seed = seed
        self.streams = streams
        # it looks at no more listings than that per want (and never saw more than the port's default)
        self.listings_per_want = min(profile.attention, Policy.listings_per_want)
        self._memory: dict[tuple[str, str], _Memory] = {}  # (market, trader) -> what it remembers
        self._key_crcs: dict[str, int] = {}  # trader -> CRC of the start of its estimates' keys

    def decide(self, obs: Observation) -> Decision:
        """One trader's turn under this profile's capabilities: answer offers, bid for wants, list and reprice
        items; deterministic for the scenario's seed, market, trader and step (its draws are keyed by them)."""
        trader = obs.trader
        memory = self._memory.get((obs.market, trader))
        if memory is None:
            memory = self._memory[obs.market, trader] = _Memory()
        # this turn's estimates, item by item (an estimate is a CRC and a product: kept for the turn only, as
        # every item a trader ever looked at would be kept for the whole run, the largest part of its memory)
        known: dict[str, int] = {}
        rng = _turn_random(self.streams, self.seed, obs.market, trader, obs.step)
        actions: list[Action] = []
        incoming = obs.incoming
        # every open offer's listing is a thread; without offers nothing looks a thread up
        threads = obs.thread_listings
        views = {view.listing.id: view for view in threads} if incoming or obs.outgoing else {}
        answered_kinds: set[str] = set()
        answered_listings: set[str] = set()
        if len(incoming) > 1:
            incoming = sorted(incoming, key=_answer_order)
        if self.profile.threads_per_turn is not None:
            incoming = incoming[: self.profile.threads_per_turn]
        for offer in incoming:
            view = views[offer.listing_id]
            if offer.seller == trader:
                if offer.listing_id in answered_listings:
                    continue  # only the best offer on a listing gets an answer this turn
                answered_listings.add(offer.listing_id)
                action = self._as_seller(obs, offer, view, rng())
            else:
                answered_kinds.add(view.item.kind)
                action = self._as_buyer(obs, offer, view, rng(), memory, known)
            if action is not None and rng().random() < self.profile.diligence:
                actions.append(action)
        if obs.my_listings:
            actions += self._reprice(obs, memory, known)
        if obs.unlisted:
            actions += self._list_items(obs, rng, known)
        actions += self._bid(obs, views, answered_kinds, rng, memory, known)
        return decided(tuple(actions)) if actions else _NO_ACTIONS

    def _remember(self, obs: Observation, memory: _Memory) -> set[str]:
        """Wants this trader has given up on (a non-persistent one quits after a failed bid)."""
        given_up = memory.given_up
        if not self.profile.persistent:
            bids = memory.bids
            for event in obs.news:
                if event.type == "offer_ended" and event.status in ("rejected", "expired") and event.listing_id in bids:
                    given_up.add(bids[event.listing_id])
        return given_up

    # --- estimates ---------------------------------------------------------
    def estimate(self, obs: Observation, item: Item) -> int:
        """The agent's own estimate of ``item``'s value (stable per trader and item)."""
        return self._estimate({}, obs.trader, item)

    def _estimate(self, known: dict[str, int], trader: str, item: Item) -> int:
        """``estimate`` given the trader's estimates so far (``known``, filled in here); at least 1."""
        cached = known.get(item.id)
        if cached is None:
            prefix = self._key_crcs.get(trader)
            if prefix is None:
                prefix = self._key_crcs[trader] = zlib.crc32(f"{self.seed}:{trader}:".encode())
            # the CRC of f"{seed}:{trader}:{item.id}:value", continued from its trader's part (a running CRC)
            digest = zlib.crc32(f"{item.id}:value".encode(), prefix)
            noise = digest / 0xFFFFFFFF * 2 - 1  # uniform in [-1, 1], stable per trader and item
            value = round(item.value * (1 + noise * self.profile.value_noise))
            cached = known[item.id] = value if value > 1 else 1
        return cached

    def _willing(self, obs: Observation, item: Item, memory: _Memory, known: dict[str, int]) -> int:
        """The most the trader would pay for ``item``: its estimate times the value cap, within the
        principal's limit for the item's kind (0 without a want of it)."""
        limit = memory.limit_for(obs.principal, item.kind)
        most = round(self._estimate(known, obs.trader, item) * self.profile.value_cap)
        return most if most < limit else limit

    # --- selling -----------------------------------------------------------
    def _list_items(self, obs: Observation, turn: _TurnRandom, known: dict[str, int]) -> list[Action]:
        actions: list[Action] = []
        reserves = obs.principal.reserves
        for item in obs.unlisted[: self.profile.listings_per_turn]:
            rng = turn()
            reserve = reserves.get(item.id, 1)
            ask = max(reserve, round(self._estimate(known, obs.trader, item) * rng.uniform(*self.profile.anchor)))
            ask = _tidy(ask)
            text = messages.write("listing", obs.principal, rng, amount=ask, item=item)
            actions.append(trusted(ListItem, item_id=item.id, ask=max(ask, reserve), description=text))
        return actions

    def _reprice(self, obs: Observation, memory: _Memory, known: dict[str, int]) -> list[Action]:
        """Lower the ask of a stale listing nobody bid on, halfway toward estimated value."""
        hours = self.profile.reprice_after_hours
        if hours is None:
            return []
        newest = obs.at - hours * HOUR  # a listing opened after this is still fresh
        actions: list[Action] = []
        with_offers: set[str] | None = None
        held: dict[str, Item] = {}
        seen = memory.reprices
        for listing in obs.my_listings:
            if listing.opened_at > newest:
                continue
            if with_offers is None:
                with_offers = {*map(_offer_listing, obs.incoming), *map(_offer_listing, obs.outgoing)}
            if listing.id in with_offers:
                continue
            last = seen.get(listing.id)
            if last is not None and last[0] is listing:
                ask = last[1]  # the new ask depends only on the listing's ask, its item and the principal
            else:
                if not held:
                    held = {i.id: i for i in obs.holdings}
                item = held[listing.item_id]
                reserve = obs.principal.reserves.get(item.id, 1)
                ask = max(reserve, _tidy(round((listing.ask + self._estimate(known, obs.trader, item)) / 2)))
                if ask >= listing.ask:
                    ask = 0
                seen[listing.id] = (listing, ask)
            if ask:
                actions.append(trusted(Reprice, listing_id=listing.id, ask=ask))
        return actions

    def _as_seller(self, obs: Observation, offer: Offer, view: ListingView, rng: random.Random) -> Action | None:
        reserve = obs.principal.reserves.get(view.item.id, 1)
        position = self._position(view.listing.ask, offer.amount, offer.round)
        close_enough = position - offer.amount <= max(position, offer.amount) * self.profile.accept_within
        last_round = offer.round >= self.profile.max_rounds
        if offer.amount >= reserve and (close_enough or last_round):
            return _accept(obs, offer, rng)
        if last_round or not self.profile.counters:
            return trusted(Reject, offer_id=offer.id, message=messages.write("reject", obs.principal, rng))
        price = max(reserve, _tidy(position))
        if price <= offer.amount:
            return _accept(obs, offer, rng)
        text = messages.write("counter_seller", obs.principal, rng, amount=price, item=view.item)
        return trusted(Counter, offer_id=offer.id, amount=price, message=text)

    # --- buying ------------------------------------------------------------
    def _as_buyer(
        self, obs: Observation, offer: Offer, view: ListingView, rng: random.Random, memory: _Memory,
        known: dict[str, int],
    ) -> Action | None:
        limit = min(self._willing(obs, view.item, memory, known), obs.available)
        target = round(min(limit, view.listing.ask) * sum(self.profile.opening_bid) / 2)
        position = self._position(target, offer.amount, offer.round)
        close_enough = offer.amount - position <= max(position, offer.amount) * self.profile.accept_within
        last_round = offer.round >= self.profile.max_rounds
        if offer.amount <= limit and (close_enough or last_round):
            return _accept(obs, offer, rng)
        if last_round or not self.profile.counters:
            return trusted(Reject, offer_id=offer.id, message=messages.write("reject", obs.principal, rng))
        price = min(limit, _tidy(position))
        if price <= 0:
            return trusted(Reject, offer_id=offer.id, message=messages.write("reject", obs.principal, rng))
        text = messages.write("counter_buyer", obs.principal, rng, amount=price, item=view.item)
        return trusted(Counter, offer_id=offer.id, amount=price, message=text)

    def _bid(
        self, obs: Observation, views: dict[str, ListingView], busy: set[str], turn: _TurnRandom, memory: _Memory,
        known: dict[str, int],
    ) -> list[Action]:
        trader = obs.trader
        for offer in (*obs.outgoing, *obs.incoming):  # a counter it has not answered yet is in flight too
            if offer.listing_id in views and (offer.proposer == trader or offer.buyer == trader):
                busy.add(views[offer.listing_id].item.kind)
        given_up = self._remember(obs, memory)
        actions: list[Action] = []
        wanted = [w for w in obs.open_wants if w.kind not in busy and w.kind not in given_up]
        if not wanted:
            return actions
        attention = self.profile.attention
        if attention < 1:
            return actions  # it looks at no listing
        shown = obs.listings_by_kind()
        available = obs.available
        ceiling = self.profile.ask_ceiling
        bids = memory.bids
        for want in wanted:
            looked_at = shown.get(want.kind)
            if looked_at is None:
                continue
            if self.profile.bids_per_turn is not None and len(actions) >= self.profile.bids_per_turn:
                break
            rng = turn()
            if rng.random() >= self.profile.diligence:
                continue
            # the first ``attention`` listings of the kind shown
            best = looked_at[0] if attention == 1 else self._best_buy(looked_at[:attention], known, trader)
            limit = min(self._willing(obs, best.item, memory, known), available)
            if limit <= 0:
                continue
            if best.listing.ask <= limit:
                amount = _tidy(round(best.listing.ask * rng.uniform(*self.profile.opening_bid)))
            elif ceiling is None or best.listing.ask <= limit * ceiling:
                amount = _tidy(round(limit * rng.uniform(*self.profile.opening_bid)))
            else:
                continue
            amount = max(1, min(amount, limit))
            text = messages.write("offer", obs.principal, rng, amount=amount, item=best.item, other=best.seller_name)
            actions.append(trusted(MakeOffer, listing_id=best.listing.id, amount=amount, message=text))
            bids[best.listing.id] = want.kind
            available -= amount
        return actions

    def _best_buy(self, views: Iterable[ListingView], known: dict[str, int], trader: str) -> ListingView:
        """The view asking least for its estimated value: the first with the lowest
        (ask * 1000 // estimate, listing id), as ``min`` would give it (a loop: no call per view)."""
        best: ListingView | None = None
        best_key: tuple[int, str] | None = None
        for view in views:
            item = view.item
            value = known.get(item.id)
            if value is None:
                value = self._estimate(known, trader, item)
            listing = view.listing
            key = (listing.ask * 1000 // value, listing.id)  # an estimate is at least 1
            if best_key is None or key < best_key:
                best, best_key = view, key
        assert best is not None, "no listing to choose from"
        return best

    def _position(self, anchor: int, theirs: int, round_: int) -> int:
        """Where it stands after ``round_`` rounds: it concedes toward their price each round."""
        keep = (1 - self.profile.concession) ** (round_ // 2)
        return round(theirs + (anchor - theirs) * keep)


_offer_listing = attrgetter("listing_id")
def _accept(obs: Observation, offer: Offer, rng: random.Random) -> Accept:
    """Accept ``offer`` with a line in the principal's style."""
    return trusted(Accept, offer_id=offer.id, message=messages.write("accept", obs.principal, rng, amount=offer.amount))


_NO_ACTIONS = Decision(actions=())  # a quiet turn's answer (a decision is immutable: one serves every such turn)


def _answer_order(offer: Offer) -> tuple[str, int, str]:
    """The order offers are answered in: by listing, the highest amount first."""
    return offer.listing_id, -offer.amount, offer.id


_TurnRandom = Callable[[], random.Random]
"""A turn's random generator, made on first use: keying one may cost more than a quiet turn (the
Mersenne Twister's set-up), and about a third of turns draw nothing."""


def _turn_random(streams: Streams, seed: int, market: str, trader: str, step: int) -> _TurnRandom:
    """The generator of a trader's turn (keyed ``{seed}:{market}:{trader}:{step}:decide``), made when first
    asked for (a closure: calling an instance's ``__call__`` cost a few thousand instructions a turn more)."""
    rng: random.Random | None = None

    def turn() -> random.Random:
        nonlocal rng
        if rng is None:
            rng = streams.generator(f"{seed}:{market}:{trader}:{step}:decide")
        return rng

    return turn


def _tidy(cents: int) -> int:
    """Round to a price a person would write: whole dollars above $20, 50c below."""
    step = 100 if cents >= 2000 else 50
    tidy = round(cents / step) * step
    return tidy if tidy > step else step  # (max(step, tidy) without a call: one of the hottest lines of a turn)


def build_policy(tier: str, settings: TierSettings, context: BackendContext) -> OfflinePolicy:
    """The ``offline`` backend: the profile named in the settings (or the tier's name), built in or
    declared under the scenario's ``profiles:``; a tier's ``options`` change single settings on top."""
    name = settings.profile or tier
    profile = resolve_profile(name, context.scenario.profiles, tier)
    overrides: dict[str, Any] = dict(settings.options)
    if overrides:
        unknown = set(overrides) - set(Profile.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown profile options {', '.join(sorted(unknown))}")
        profile = replace(profile, **{k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()})
    return OfflinePolicy(profile, seed=context.scenario.seed, streams=STREAMS[context.scenario.streams])


def resolve_profile(name: str, declared: dict[str, ProfileSpec], tier: str = "") -> Profile:
    """The profile called ``name``: declared in the scenario (its base with its changes) or built in."""
    clash = sorted(set(declared) & set(PROFILES))
    if clash:
        raise ValueError(f"profiles.{clash[0]}: {clash[0]!r} is a built-in profile; give the declared one another "
                         f"name (built in: {', '.join(PROFILES)})")
    if name in declared:
        spec = declared[name]
        return replace(resolve_profile(spec.base, declared, tier), name=name, **spec.changes())
    if name in PROFILES:
        return PROFILES[name]
    where = f"tier {tier!r} uses " if tier else ""
    raise ValueError(
        f"{where}unknown offline profile {name!r}; built in: {', '.join(PROFILES)}; declared in this scenario: "
        f"{', '.join(declared) or 'none'}. Declare it under `profiles:` with a built-in base and what differs, "
        f"e.g. profiles: {{{name}: {{base: small, attention: 4, counters: true}}}} "
        f"(settings: {', '.join(f for f in Profile.__dataclass_fields__ if f != 'name')})"
    )
