"""The trading desk: a person's actions (commands, buttons, approved actions, replies in a listing's
thread) go to the live run, under the same exchange rules as every agent's, and the answer comes back.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from concurrent.futures import Future

from market import exchange
from market.actions import Action, SendMessage
from market.events import DealClosed, OfferMade
from market.money import MoneyError, parse_money
from running.live import LiveMarket
from slackbot import blocks
from slackbot.board import Board
from slackbot.courier import Courier
from slackbot.render import Post, listing_key
from slackbot.store import Person, Store

Notify = Callable[[str], None]
"""Hears one sentence for the person (the exchange's answer, a refusal)."""
WEEK_OVER = "The week is over: nothing more can be done in this market."


class Desk:
    """Takes people's actions to the live run; refuses them once the week is over."""

    def __init__(self, run: LiveMarket, store: Store, board: Board, courier: Courier,
                 finished: threading.Event) -> None:
        self.run = run
        self.store = store
        self.board = board
        self.courier = courier
        self.finished = finished

    def over(self) -> bool:
        """True once the week ended (its clock ran out or stopped) or was settled."""
        return self.finished.is_set() or self.store.get("state") == "settled"

    def submit(self, user_id: str, action: Action, done: Notify) -> str | None:
        """Queue a person's action; ``done`` hears the exchange's answer. Returns a refusal or None."""
        person = self.store.person(user_id)
        if person is None:
            return "You have not joined yet: type `/deal join`."
        return self.act(person, action, done)

    def act(self, person: Person, action: Action, done: Notify, approval: str | None = None) -> str | None:
        """Queue ``person``'s ``action`` (for ``approval``, whose result is recorded); a refusal or None."""
        if self.over():
            if approval:
                self.store.approval_result(approval, "refused: the week is over")
            return WEEK_OVER
        future = self.run.submit(person.market, person.participant_id, action)

        def answered(f: Future[exchange.Outcome]) -> None:
            outcome = f.result()
            if isinstance(outcome, exchange.Rejection):
                result, text = f"refused: {outcome.reason}", f"Not done: {outcome.reason}"
            else:
                made = [e.deal.id for e in outcome if isinstance(e, DealClosed)]
                made += [e.offer.id for e in outcome if isinstance(e, OfferMade)]
                result, text = ",".join(made), f"Done: {action.type.replace('_', ' ')}."
            if approval:
                self.store.approval_result(approval, result)
            done(text)

        future.add_done_callback(answered)
        return None

    # --- haggling in threads ------------------------------------------------------------------------
    def thread_reply(self, user_id: str, channel: str, thread_ts: str, ts: str, text: str) -> None:
        """A person's reply in a listing's thread: a message in that listing's conversation.

        Their agent's counterparts read it in their observation; a person trading by hand who
        names a price gets a one-click offer button (shown to them only). Replies in threads that
        are not a listing's are someone else's conversation and left alone.
        """
        key = self.store.post_key(channel, thread_ts)
        listing = listing_of(key) if key else None
        if key is None or listing is None:
            return
        market, lid = listing
        refusal = self._haggle(user_id, market, lid, channel, ts, text)
        if refusal:
            self.courier.post(Post(key=f"refusal:{channel}:{ts}", market=market, msg=blocks.notice(refusal),
                                   thread=key, ephemeral=user_id))

    def _haggle(self, user_id: str, market: str, lid: str, channel: str, ts: str, text: str) -> str | None:
        person = self.store.person(user_id)
        if person is None or person.market != market:
            return "Join the market first (`/deal join`) to haggle in its threads."
        text = text.strip()[:2000]
        if not text:
            return None
        with self.board.lock:
            state = self.board.state(market)
            lst = state.listings.get(lid)
            title = state.items[lst.item_id].title if lst else "this item"
        if lst is None or lst.status != "open":
            return "That listing is closed: your message was not passed on."
        echo = (market, person.participant_id, lid, text)
        self.board.expect_echo(echo, (channel, ts))

        def answered(result: str) -> None:
            if result.startswith("Not done"):  # refused by the exchange at the tick: no echo will come
                self.board.forget_echo(echo)
                self.courier.post(Post(key=f"refusal:{channel}:{ts}", market=market, msg=blocks.notice(result),
                                       thread=listing_key(market, lid), ephemeral=user_id))

        refusal = self.act(person, SendMessage(listing_id=lid, text=text), answered)
        if refusal:
            self.board.forget_echo(echo)
            return refusal
        amount = price_in(text)
        if person.autonomy == "manual" and amount is not None and lst.seller != person.participant_id:
            self.courier.post(Post(key=f"price:{channel}:{ts}", market=market,
                                   msg=blocks.offer_button(lid, title, amount),
                                   thread=listing_key(market, lid), ephemeral=user_id))
        return None


_PRICE = re.compile(r"\$\s?(\d{1,7}(?:,\d{3})*(?:\.\d{1,2})?)|\b(\d{1,7}(?:\.\d{1,2})?)\s?(?:dollars|bucks)\b",
                    re.IGNORECASE)


def price_in(text: str) -> int | None:
    """The first amount a message names ("I'd do $12", "12.50 dollars") in cents, exactly; or None."""
    match = _PRICE.search(text)
    if match is None:
        return None
    try:
        amount = parse_money("$" + (match.group(1) or match.group(2)).replace(",", ""))
    except MoneyError:
        return None
    return amount if amount > 0 else None


def listing_of(key: str) -> tuple[str, str] | None:
    """(market, listing id) of a listing's post key, or None for any other post."""
    market, sep, lid = key.partition(":listing:")
    return (market, lid) if sep and market and lid else None
