"""Block Kit builders and escaping, tested alone (no Slack, no files)."""

from __future__ import annotations

import json

from market.domain import Condition, Deal, Item, Listing, Offer
from slackbot import blocks
from slackbot.escape import CUT_MARKER, TEXT_LIMIT, cut, escape, safe

ITEM = Item(id="p1-i1", kind="lamp", title="Desk lamp", category="desk", condition=Condition.GOOD, value=1500)
LISTING = Listing(id="L1", item_id="p1-i1", seller="p1", ask=1850, description="Bright & warm", opened_at=0)


def _texts(msg: dict) -> list[str]:
    out: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("type") in ("mrkdwn", "plain_text"):
                out.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(msg["blocks"])
    return out


def test_escape_defuses_mentions_and_markup() -> None:
    assert escape("a & b <c>") == "a &amp; b &lt;c&gt;"
    assert "<!channel>" not in escape("<!channel> hi <@U123> <https://x|y>")
    assert "<" not in escape("<!here>") and ">" not in escape("<@U1>")
    assert escape("hey @channel and @HERE") == "hey @\u200bchannel and @\u200bHERE"


def test_cut_marks_long_text_and_never_splits_an_entity() -> None:
    assert cut("short") == "short"
    long = cut("x" * 5000)
    assert len(long) == TEXT_LIMIT and long.endswith(CUT_MARKER)
    text = safe("a" * (TEXT_LIMIT - 10) + "&&&&&&&&&&&&&&")
    assert len(text) <= TEXT_LIMIT and text.endswith(CUT_MARKER)
    body = text.removesuffix(CUT_MARKER)
    assert body.count("&") == body.count("&amp;")


def test_listing_shows_title_ask_seller_and_hides_tier_by_default() -> None:
    msg = blocks.listing(LISTING, ITEM, "Ada <Lovelace>")
    text = " ".join(_texts(msg))
    assert "Desk lamp" in text and "$18.50" in text and "Ada &lt;Lovelace&gt;" in text
    assert "Bright &amp; warm" in text
    assert "frontier" not in text
    shown = " ".join(_texts(blocks.listing(LISTING, ITEM, "Ada", tier="frontier")))
    assert "frontier agent" in shown
    assert msg["text"].startswith("Desk lamp")


def test_user_text_in_every_builder_is_escaped() -> None:
    evil = "<!channel> buy now & <@U999>"
    offer = Offer(id="O1", listing_id="L1", proposer="p2", recipient="p1", buyer="p2", seller="p1",
                  amount=1200, message=evil, made_at=0, expires_at=10)
    deal = Deal(id="D1", listing_id="L1", offer_id="O1", item_id="p1-i1", seller="p1", buyer="p2", price=1200, at=5)
    msgs = [
        blocks.offer(offer, evil, "Ada", buttons=True),
        blocks.chat(evil, evil, evil),
        blocks.deal(deal, ITEM, evil, evil, evil),
        blocks.participant_joined(evil, None),
        blocks.settlement(evil, "A", [(evil, 100)], [], -100),
    ]
    for msg in msgs:
        dumped = json.dumps(msg["blocks"])
        assert "<!channel>" not in dumped and "<@U999>" not in dumped
        assert "&lt;!channel&gt;" in dumped


def test_limits_hold_for_huge_inputs() -> None:
    many = [(f"Item {n} " + "z" * 300, n) for n in range(400)]
    msg = blocks.settlement("Ada", "A", many, many, 0)
    assert len(msg["blocks"]) <= blocks.MAX_BLOCKS
    assert all(len(t) <= TEXT_LIMIT for t in _texts(msg))
    assert any(CUT_MARKER.strip() in t for t in _texts(msg))
    big = blocks.message("fallback", [blocks.section("x")] * 120)
    assert len(big["blocks"]) == 50 and "71 more not shown" in big["blocks"][-1]["elements"][0]["text"]
    chat = blocks.chat("Ada", "y" * 10_000)
    assert all(len(t) <= TEXT_LIMIT for t in _texts(chat)) and len(chat["text"]) <= TEXT_LIMIT


def test_offer_buttons_and_approval_carry_ids_only() -> None:
    offer = Offer(id="O7", listing_id="L1", proposer="p2", recipient="p1", buyer="p2", seller="p1",
                  amount=999, made_at=0, expires_at=10)
    actions = blocks.offer(offer, "Ben", "Ada", buttons=True)["blocks"][-1]["elements"]
    assert [(a["action_id"], a["value"]) for a in actions] == [("offer_accept", "O7"), ("offer_reject", "O7")]
    approval = blocks.approval_request("ap-1", "accept", offer.amount, ITEM.title, "Ben", offer.id)
    ids = [(e["action_id"], e["value"]) for e in approval["blocks"][-1]["elements"]]
    assert ids == [("approve_deal", "ap-1"), ("decline_deal", "ap-1")]
    assert "accept *$9.99* from Ben" in approval["blocks"][0]["text"]["text"]
    counter = blocks.approval_request("ap-2", "counter", 1200, ITEM.title, "<!here>", "O7", previous=999)
    text = counter["blocks"][0]["text"]["text"]
    assert "offer of $9.99 with *$12.00*" in text and "<!here>" not in text


def test_digest_and_status_money_is_formatted_from_cents() -> None:
    stats = blocks.DayStats(listings=3, offers=5, deals=2, volume=12345, top=[("Lamp", 10000), ("Mug", 2345)])
    text = " ".join(_texts(blocks.digest("A", 1, stats)))
    assert "$123.45" in text and "Lamp — $100.00" in text and "day 1" in text
    status = blocks.status("Ada", "A", 10000, 2500, [ITEM], [(LISTING, ITEM)], [], {})
    text = " ".join(_texts(status))
    assert "$100.00" in text and "$25.00" in text and "$75.00" in text and "No open offers" in text
