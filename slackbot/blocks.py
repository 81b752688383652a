"""Block Kit builders: pure functions from market records to Slack messages.

Every builder returns ``{"text": fallback, "blocks": [...]}`` within Slack's
limits: at most 50 blocks per message and 3,000 characters per text field
(longer text is cut with a visible marker). Text from people and agents is
escaped here; names of buttons' values carry ids only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from market.domain import Deal, Item, Listing, Offer, OfferStatus
from market.mandate import Mandate
from market.money import format_money
from slackbot.escape import TEXT_LIMIT, cut, inline, safe

MAX_BLOCKS = 50
Block = dict[str, Any]
Msg = dict[str, Any]


def mrkdwn(text: str) -> dict[str, str]:
    """A mrkdwn text object, ``text`` cut to ``TEXT_LIMIT``; not escaped (callers escape people's text)."""
    return {"type": "mrkdwn", "text": cut(text, TEXT_LIMIT)}


def plain(text: str, limit: int = 75) -> dict[str, Any]:
    """A plain_text object (emoji on), ``text`` cut to ``limit`` characters (75: a button label's limit)."""
    return {"type": "plain_text", "text": cut(text, limit), "emoji": True}


def section(text: str) -> Block:
    """A section block of mrkdwn ``text`` (already escaped)."""
    return {"type": "section", "text": mrkdwn(text)}


def context(text: str) -> Block:
    """A context block (small grey text) of mrkdwn ``text`` (already escaped)."""
    return {"type": "context", "elements": [mrkdwn(text)]}


def button(label: str, action_id: str, value: str, style: str | None = None) -> dict[str, Any]:
    """A button: ``label`` as plain text, ``value`` (an id) cut to 2,000 characters, ``style`` ``primary`` or
    ``danger`` if given."""
    out: dict[str, Any] = {"type": "button", "text": plain(label), "action_id": action_id, "value": value[:2000]}
    if style:
        out["style"] = style
    return out


def message(fallback: str, blocks: Sequence[Block]) -> Msg:
    """A message within limits: more than 50 blocks end in a 'not shown' marker.

    ``fallback`` is raw text (Slack renders the top-level ``text`` as mrkdwn in
    notifications and clients without blocks): it is escaped and cut here.
    """
    blocks = list(blocks)
    if len(blocks) > MAX_BLOCKS:
        hidden = len(blocks) - (MAX_BLOCKS - 1)
        blocks = [*blocks[: MAX_BLOCKS - 1], context(f"…[cut] {hidden} more not shown")]
    return {"text": safe(fallback, TEXT_LIMIT), "blocks": blocks}


def _tier(tier: str | None) -> str:
    return f" · _{inline(tier, 40)} agent_" if tier else ""


# --- the market in its channel ------------------------------------------------------------------


def market_opened(market: str, people: int) -> Msg:
    """The channel's first message: the market is open with ``people`` participants."""
    text = f":shopping_trolley: *Market {inline(market, 40)} is open* with {people} participants."
    return message(f"Market {market} is open", [section(text)])


def participant_joined(name: str, tier: str | None) -> Msg:
    """A participant joined the market (their agent's tier shown when ``tier`` is given)."""
    return message(f"{name} joined", [context(f":wave: *{inline(name, 80)}* joined the market{_tier(tier)}")])


def listing(lst: Listing, item: Item, seller_name: str, tier: str | None = None) -> Msg:
    """The top-level message of a listing; its thread carries the haggling."""
    head = f"*{inline(item.title, 200)}* — asking *{format_money(lst.ask)}*"
    blocks = [section(head)]
    if lst.description:
        blocks.append(section(safe(lst.description)))
    blocks.append(context(
        f"Sold by *{inline(seller_name, 80)}*{_tier(tier)} · {inline(item.condition.value, 20)} · "
        f"{inline(item.category, 40)} · listing `{inline(lst.id, 20)}`"
    ))
    return message(f"{item.title} — asking {format_money(lst.ask)}", blocks)


def offer(off: Offer, proposer_name: str, recipient_name: str, buttons: bool = False) -> Msg:
    """An offer or counter-offer, as a thread reply (or a DM with buttons for a person acting alone)."""
    verb = "offers" if off.proposer == off.buyer and off.counter_of is None else "counters with"
    text = f"*{inline(proposer_name, 80)}* {verb} *{format_money(off.amount)}* to {inline(recipient_name, 80)}"
    blocks = [section(text)]
    if off.message:
        blocks.append(section(f"> {safe(off.message)}"))
    blocks.append(context(f"offer `{inline(off.id, 20)}` · round {off.round}"))
    if buttons:
        blocks.append({"type": "actions", "elements": [
            button("Accept", "offer_accept", off.id, "primary"),
            button("Reject", "offer_reject", off.id, "danger"),
        ]})
    return message(f"{proposer_name} {verb} {format_money(off.amount)}", blocks)


_ENDED = {
    OfferStatus.REJECTED: "turned down",
    OfferStatus.WITHDRAWN: "withdrew",
    OfferStatus.EXPIRED: "expired",
    OfferStatus.CLOSED: "closed",
    OfferStatus.COUNTERED: "countered",
}


def offer_ended(off: Offer, status: OfferStatus, actor_name: str, note: str = "") -> Msg:
    """An offer ended without a deal, as a thread reply: who turned it down, withdrew or countered it (by
    ``actor_name``, with their ``note``), or that it expired or closed."""
    what = _ENDED.get(status, status.value)
    if status in (OfferStatus.EXPIRED, OfferStatus.CLOSED):
        text = f"Offer `{inline(off.id, 20)}` of {format_money(off.amount)} {what}."
        fallback = f"Offer {off.id} of {format_money(off.amount)} {what}."
    else:
        text = f"*{inline(actor_name, 80)}* {what} offer `{inline(off.id, 20)}` of {format_money(off.amount)}."
        fallback = f"{actor_name} {what} offer {off.id} of {format_money(off.amount)}."
    blocks = [context(text)]
    if note:
        blocks.append(section(f"> {safe(note)}"))
    return message(fallback, blocks)


def chat(sender_name: str, text: str, to_name: str | None = None) -> Msg:
    """A message in a listing's thread, from ``sender_name`` (to ``to_name`` if given); ``text`` escaped here."""
    who = f"*{inline(sender_name, 80)}*" + (f" → {inline(to_name, 80)}" if to_name else "")
    return message(f"{sender_name[:80]}: {text[:200]}", [section(f"{who}: {safe(text, TEXT_LIMIT - 200)}")])


def repriced(lst: Listing, old: int, new: int) -> Msg:
    """A listing's asking price changed from ``old`` to ``new`` cents."""
    text = f"Price of `{inline(lst.id, 20)}` changed: ~{format_money(old)}~ → *{format_money(new)}*"
    return message(f"Price of {lst.id} changed: {format_money(old)} → {format_money(new)}", [context(text)])


def delisted(lst: Listing, seller_name: str) -> Msg:
    """The seller took a listing down."""
    text = f"*{inline(seller_name, 80)}* took listing `{inline(lst.id, 20)}` down."
    return message(f"{seller_name[:80]} took listing {lst.id} down.", [context(text)])


def deal(d: Deal, item: Item, seller_name: str, buyer_name: str, note: str = "") -> Msg:
    """A closed deal, announced in the listing's thread and the channel."""
    text = (f":handshake: *Deal!* {inline(buyer_name, 80)} bought *{inline(item.title, 200)}* "
            f"from {inline(seller_name, 80)} for *{format_money(d.price)}*")
    blocks = [section(text)]
    if note:
        blocks.append(section(f"> {safe(note)}"))
    blocks.append(context(f"deal `{inline(d.id, 20)}`"))
    return message(f"Deal: {item.title} for {format_money(d.price)}", blocks)


@dataclass
class DayStats:
    """One simulated day of one market, for the digest."""

    listings: int = 0
    offers: int = 0
    deals: int = 0
    volume: int = 0
    joined: int = 0
    top: list[tuple[str, int]] = field(default_factory=list)  # (item title, price)


def digest(market: str, day: int, stats: DayStats) -> Msg:
    """The end-of-day digest of one market: listings, offers, deals, money traded, newcomers and the five
    biggest deals."""
    head = f":bar_chart: *Market {inline(market, 40)} — day {day} digest*"
    lines = [
        f"New listings: *{stats.listings}* · offers: *{stats.offers}* · deals: *{stats.deals}* "
        f"· traded: *{format_money(stats.volume)}*",
    ]
    if stats.joined:
        lines.append(f"New participants: *{stats.joined}*")
    blocks = [section(head), section("\n".join(lines))]
    if stats.top:
        biggest = sorted(stats.top, key=lambda x: -x[1])[:5]
        top = "\n".join(f"• {inline(t, 200)} — {format_money(p)}" for t, p in biggest)
        blocks.append(section(f"Biggest deals:\n{top}"))
    return message(f"Market {market} day {day}: {stats.deals} deals, {format_money(stats.volume)}", blocks)


# --- a person's own view (ephemeral or DM) -----------------------------------------------------


def status(
    name: str, market: str, balance: int, escrow: int, holdings: Sequence[Item],
    listings: Sequence[tuple[Listing, Item]], threads: Sequence[Offer], names: dict[str, str],
) -> Msg:
    """A person's own view (``/deal status``): balance, escrow and what is available, their holdings, open
    listings and open offers (``names``: participant id -> name, an id shown for one not in it)."""
    blocks = [
        section(f"*{inline(name, 80)}* in market *{inline(market, 40)}*"),
        section(f"Balance *{format_money(balance)}* · in escrow *{format_money(escrow)}* "
                f"· available *{format_money(balance - escrow)}*"),
    ]
    if holdings:
        lines = "\n".join(f"• `{inline(i.id, 30)}` {inline(i.title, 100)}" for i in holdings)
        blocks.append(section(f"*Holdings*\n{lines}"))
    if listings:
        lines = "\n".join(f"• `{inline(lst.id, 20)}` {inline(i.title, 100)} at {format_money(lst.ask)}"
                          for lst, i in listings)
        blocks.append(section(f"*Your open listings*\n{lines}"))
    if threads:
        lines = "\n".join(
            f"• `{inline(o.id, 20)}` on `{inline(o.listing_id, 20)}`: {format_money(o.amount)} from "
            f"{inline(names.get(o.proposer, o.proposer), 80)} to {inline(names.get(o.recipient, o.recipient), 80)}"
            for o in threads
        )
        blocks.append(section(f"*Open offers*\n{lines}"))
    else:
        blocks.append(context("No open offers."))
    return message(f"Balance {format_money(balance)}, escrow {format_money(escrow)}", blocks)


_HELD_VERBS = {
    "accept": "accept *{amount}* from {who}",
    "make_offer": "offer *{amount}* to {who}",
    "counter": "answer {who}'s offer of {previous} with *{amount}*",
}


def approval_request(approval_id: str, kind: str, amount: int, item_title: str, counterpart: str,
                     ref: str, previous: int | None = None) -> Msg:
    """The DM asking a person to approve an action of their agent's that can close a deal."""
    verb = _HELD_VERBS.get(kind, kind.replace("_", " ") + " *{amount}* with {who}")
    what = verb.format(amount=format_money(amount), who=inline(counterpart, 80),
                       previous=format_money(previous) if previous is not None else "?")
    text = (f"Your agent wants to {what} for *{inline(item_title, 200)}* (`{inline(ref, 20)}`). "
            "If it is taken, that is a deal. Approve?")
    return message(f"Approve a deal for {item_title}?", [
        section(text),
        {"type": "actions", "block_id": f"approval:{approval_id}"[:255], "elements": [
            button("Approve", "approve_deal", approval_id, "primary"),
            button("Decline", "decline_deal", approval_id, "danger"),
        ]},
    ])


def approval_done(approved: bool, item_title: str, reason: str = "") -> Msg:
    """A person's approval as settled: approved or declined, the item's title, and why (``reason``)."""
    raw = f"{'Approved' if approved else 'Declined'}: {item_title[:200]}" + (f" — {reason}" if reason else "")
    return message(raw, [section(safe(raw))])


def settlement(
    name: str, market: str, bought: Sequence[tuple[str, int]], sold: Sequence[tuple[str, int]], net: int,
    survey_button: bool = True,
) -> Msg:
    """The end-of-week DM: what they bought and sold, and the net money."""
    blocks = [section(f":receipt: *The week in market {inline(market, 40)} is settled, {inline(name, 80)}.*")]
    for label, rows in (("Bought", bought), ("Sold", sold)):
        if rows:
            lines = "\n".join(f"• {inline(t, 200)} — {format_money(p)}" for t, p in rows)
            blocks.append(section(f"*{label}*\n{lines}"))
        else:
            blocks.append(context(f"{label}: nothing"))
    sign = "+" if net >= 0 else ""
    blocks.append(section(f"Net money: *{sign}{format_money(net)}*"))
    if survey_button and (bought or sold):
        blocks.append({"type": "actions", "elements": [button("Rate your deals", "open_survey", market)]})
    return message(f"Settled: net {sign}{format_money(net)}", blocks)


def notice(text: str) -> Msg:
    """A short answer (errors, confirmations) from raw ``text``: escaped and cut here."""
    return message(text, [section(safe(text))])


def trusted(text: str) -> Msg:
    """A message of the bot's own mrkdwn (help, usage): no one else's text in it."""
    return {"text": cut(text, TEXT_LIMIT), "blocks": [section(text)]}


def offer_button(listing_id: str, item_title: str, amount: int) -> Msg:
    """The one-click offer shown to a person trading by hand who named a price in a listing's thread."""
    label = f"Make this an offer: {format_money(amount)}"
    text = f"You named *{format_money(amount)}* for *{inline(item_title, 200)}*."
    return message(f"{label} for {item_title}", [
        section(text),
        {"type": "actions", "elements": [button(label, "make_offer", f"{listing_id}|{amount}", "primary")]},
    ])


def market(market_name: str, rows: Sequence[tuple[Listing, Item, str]], buttons: bool = True) -> Msg:
    """Open listings a person could buy (``(listing, item, seller name)``), each with an offer button at its ask."""
    head = section(f":shopping_trolley: *Open listings in market {inline(market_name, 40)}* ({len(rows)})")
    if not rows:
        return message(f"No open listings in market {market_name}", [head, context("Nothing for sale right now.")])
    out: list[Block] = [head]
    shown = rows[: MAX_BLOCKS - 2]
    for lst, item, seller in shown:
        block = section(f"*{inline(item.title, 200)}* — asking *{format_money(lst.ask)}*\n"
                        f"Sold by {inline(seller, 80)} · listing `{inline(lst.id, 20)}`")
        if buttons:
            block["accessory"] = button(f"Offer {format_money(lst.ask)}", "make_offer", f"{lst.id}|{lst.ask}")
        out.append(block)
    if len(rows) > len(shown):
        out.append(context(f"…[cut] {len(rows) - len(shown)} more not shown"))
    if not buttons:
        out.append(context("Type `/deal join` to make offers."))
    return message(f"{len(rows)} open listings in market {market_name}", out)


def mandate(form: Mandate) -> Msg:
    """The mandate the interview extracted, with the button to confirm or correct it."""
    lines = [f"• sell *{inline(x.title, 100)}*: asking {format_money(x.ask)}, at least {format_money(x.least)}"
             for x in form.sells]
    lines += [f"• buy *{inline(x.title, 100)}*: at most {format_money(x.max_price)}" for x in form.wants]
    lines += [f"• style: {inline(form.style, 20)} · your agent: {inline(form.autonomy, 20)}"]
    return message("Your agent's mandate: please confirm it", [
        section("*Here is what I understood.* Your agent will keep to these limits:"),
        section("\n".join(lines)),
        {"type": "actions", "elements": [button("Review and join", "interview_review", "review", "primary")]},
    ])
