"""The market board in Slack: every event of the week rendered into its channels and DMs, and what a
person looks at (the open listings, their status, their deals, their settlement).

The board follows the live run (``LiveMarket.follow``): the history first, then each batch as it is
written to the ledger. Its view of each market is the renderer's state, the projection of those
events; ``lock`` guards it (the engine thread moves it on while Slack's threads read it).
"""

from __future__ import annotations

import threading
from typing import Any

from market.actions import Action, Counter, MakeOffer
from market.domain import Deal, Listing, Offer
from market.events import DealClosed, MessageSent, OfferMade
from market.state import MarketState
from slackbot import blocks
from slackbot.approvals import target
from slackbot.courier import Courier
from slackbot.render import Renderer
from slackbot.store import Person, Store

Echo = tuple[str, str, str, str]
"""(market, sender, listing id, text): a message a person wrote in a listing's thread themselves."""


class Board:
    """Renders the week's events into posts, DMs people about their offers and deals, answers what they see."""

    def __init__(self, store: Store, courier: Courier, *, show_tiers: bool) -> None:
        self.store = store
        self.courier = courier
        self.renderer = Renderer(show_tiers=show_tiers)
        self.lock = threading.RLock()  # guards the renderer's view of the markets
        self._echoes: dict[Echo, tuple[str, str]] = {}  # a person's own thread replies: (channel, ts)

    # --- following the week ---------------------------------------------------------------------------
    def follow(self, seq: int, market: str, event: Any, replay: bool) -> None:
        """A follower of the live run: post what ``event`` shows (once per key, also after a restart)."""
        with self.lock:
            self._publish(seq, market, event, replay)

    def _publish(self, seq: int, market: str, event: Any, replay: bool) -> None:
        if isinstance(event, MessageSent):
            m = event.message
            echo = self._echoes.pop((market, m.sender, m.listing_id, m.text), None)
            if echo is not None:  # the person's own reply in the thread is this message's post
                self.store.record_post(f"{market}:{seq}", *echo)
        for post in self.renderer.feed(seq, market, event):
            if not (replay and self.store.posted(post.key)):
                self.courier.post(post)
        state = self.renderer.state(market)
        if isinstance(event, OfferMade):
            person = self.store.person_by_participant(market, event.offer.recipient)
            if person and person.autonomy == "manual":
                names = (name_in(state, event.offer.proposer), name_in(state, event.offer.recipient))
                self.courier.dm(person.user_id, f"dm:{market}:{seq}", blocks.offer(event.offer, *names, buttons=True))
        elif isinstance(event, DealClosed):
            for pid in (event.deal.buyer, event.deal.seller):
                person = self.store.person_by_participant(market, pid)
                if person:
                    item = state.items[event.deal.item_id]
                    msg = blocks.deal(event.deal, item, name_in(state, event.deal.seller),
                                      name_in(state, event.deal.buyer))
                    self.courier.dm(person.user_id, f"dm:{market}:{seq}:{pid}", msg)

    def expect_echo(self, echo: Echo, post: tuple[str, str]) -> None:
        """A person wrote ``echo`` in a thread (``post``: its channel and ts): that is its message's post."""
        self._echoes[echo] = post

    def forget_echo(self, echo: Echo) -> None:
        """The message will not come (refused): nothing to match."""
        self._echoes.pop(echo, None)

    def finish(self) -> None:
        """The week is over: the renderer's last posts."""
        for post in self.renderer.finish():
            self.courier.post(post)

    # --- what people see ----------------------------------------------------------------------------
    def state(self, market: str) -> MarketState:
        """``market``'s state as the board shows it (read under ``lock``)."""
        return self.renderer.state(market)

    def market_view(self, market: str, me: str | None, buttons: bool) -> blocks.Msg:
        """The open listings in ``market`` not ``me``'s, with offer buttons when ``buttons``."""
        with self.lock:
            state = self.renderer.state(market)
            rows = [(lst, state.items[lst.item_id], name_in(state, lst.seller)) for lst in state.listings.values()
                    if lst.status == "open" and lst.seller != me]
        return blocks.market(market, rows, buttons=buttons)

    def status(self, person: Person) -> blocks.Msg:
        """``person``'s balance, escrow, holdings, open listings and offers."""
        with self.lock:
            state = self.renderer.state(person.market)
            pid = person.participant_id
            holdings = state.holdings(pid)
            mine = [(state.listings[lid], state.items[state.listings[lid].item_id])
                    for lid in state.listings_by_seller.get(pid, {}) if state.listings[lid].status == "open"]
            threads = [state.offers[o] for o in state.open_offers_by_party.get(pid, {})]
            names = {p: q.name for p, q in state.participants.items()}
            return blocks.status(names.get(pid, pid), person.market, state.balance.get(pid, 0),
                                 state.escrow.get(pid, 0), holdings, mine, threads, names)

    def deals_of(self, person: Person) -> list[tuple[Deal, str]]:
        """``person``'s deals with their items' titles."""
        with self.lock:
            state = self.renderer.state(person.market)
            return [(d, state.items[d.item_id].title) for d in state.deals
                    if person.participant_id in (d.buyer, d.seller)]

    def settlement(self, person: Person) -> blocks.Msg:
        """``person``'s settlement: what they bought and sold, and their net."""
        with self.lock:
            state = self.renderer.state(person.market)
            pid = person.participant_id
            mine = [d for d in state.deals if pid in (d.buyer, d.seller)]
            bought = [(state.items[d.item_id].title, d.price) for d in mine if d.buyer == pid]
            sold = [(state.items[d.item_id].title, d.price) for d in mine if d.seller == pid]
            net = state.balance.get(pid, 0) - state.participants[pid].budget
            return blocks.settlement(name_in(state, pid), person.market, bought, sold, net)

    def question(self, market: str, approval: str, action: Action) -> blocks.Msg:
        """The approval DM for ``action``, from what the board still knows (the exchange judges it later)."""
        with self.lock:
            return _question(self.renderer.state(market), approval, action)

    def title(self, market: str, action: Action) -> str:
        """The title of the item a held action is about, from what the board still knows."""
        with self.lock:
            return _title(self.renderer.state(market), action)


def name_in(state: MarketState, pid: str) -> str:
    """``pid``'s name in ``state`` (the id itself for someone it does not know)."""
    person = state.participants.get(pid)
    return person.name if person else pid


def _about(state: MarketState, action: Action) -> tuple[Offer | None, Listing | None, str]:
    """The offer and listing a held action is about (None where the board does not know them) and the item's title."""
    offer = state.offers.get(getattr(action, "offer_id", ""))
    listing = state.listings.get(offer.listing_id if offer else getattr(action, "listing_id", ""))
    item = state.items.get(listing.item_id) if listing else None
    return offer, listing, item.title if item else "an item"


def _title(state: MarketState, action: Action) -> str:
    return _about(state, action)[2]


def _question(state: MarketState, approval: str, action: Action) -> blocks.Msg:
    offer, listing, title = _about(state, action)
    if isinstance(action, MakeOffer):
        seller = name_in(state, listing.seller) if listing else "the seller"
        return blocks.approval_request(approval, action.type, action.amount, title, seller, action.listing_id)
    who = name_in(state, offer.proposer) if offer else "the other side"
    previous = offer.amount if offer else None
    amount = action.amount if isinstance(action, Counter) else (previous or 0)
    return blocks.approval_request(approval, action.type, amount, title, who, target(action), previous)
