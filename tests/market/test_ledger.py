"""The event store: append in transactions, replay, export as JSON lines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from market.actions import Accept, ListItem, MakeOffer
from market.domain import Message
from market.events import (
    ActionRejected,
    ListingRepriced,
    MarketOpened,
    MessageSent,
    OfferEnded,
    ParticipantJoined,
    RejectionCode,
    Rules,
    event_dict,
    event_json,
    parse_event,
)
from market.exchange import apply
from market.ledger import READ_BACK, Ledger, LedgerError
from market.money import MAX_CENTS
from tests.conftest import ROOT
from tests.market.helpers import person


def test_append_replay_and_export(tmp_path: Path) -> None:
    with Ledger(tmp_path / "ledger.sqlite", create=True) as ledger:
        opening = [MarketOpened(at=0, rules=Rules()), ParticipantJoined(at=0, participant=person("ann")),
                   ParticipantJoined(at=0, participant=person("bob"))]
        ledger.append("A", opening)
        state = ledger.replay("A")
        events = apply(state, "ann", ListItem(item_id="ann-i1", ask=500), 5)
        events += apply(state, "bob", MakeOffer(listing_id="L1", amount=400), 6)  # type: ignore[operator]
        ledger.append("A", events)  # type: ignore[arg-type]
        assert ledger.last_seq == 5
        rebuilt = ledger.replay("A")
        assert rebuilt.escrow == state.escrow and rebuilt.listings == state.listings
        lines = list(ledger.export_lines())
    assert [json.loads(line)["seq"] for line in lines] == [1, 2, 3, 4, 5]
    assert json.loads(lines[-1])["event"]["offer"]["amount"] == 400
    with Ledger(tmp_path) as reopened:  # a run folder works too
        assert reopened.last_seq == 5 and reopened.markets() == ["A"]
    assert [json.loads(line)["event"] for line in lines] == [event_dict(e) for e in [*opening, *events]]
    # the canonical text: the fields in order (``type`` first), no spaces, text as UTF-8
    assert all(event_json(e) == json.dumps(event_dict(e), separators=(",", ":"), ensure_ascii=False)
               for e in [*opening, *events])
    assert event_json(opening[0]) == \
        '{"type":"market_opened","at":0,"rules":{"offer_ttl":86400,"enforce_mandate":true}}'


def test_not_a_ledger_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="no ledger here"):
        Ledger(tmp_path)
    (tmp_path / "ledger.sqlite").write_bytes(b"this is not sqlite at all, just text" * 100)
    with pytest.raises(LedgerError, match="not a readable ledger"):
        Ledger(tmp_path)


def test_ledger_command_prints_json_lines(tmp_path: Path) -> None:
    with Ledger(tmp_path / "ledger.sqlite", create=True) as ledger:
        ledger.append("A", [MarketOpened(at=0, rules=Rules())])
    cmd = [sys.executable, "-m", "market.ledger"]
    ok = subprocess.run([*cmd, str(tmp_path)], capture_output=True, text=True, cwd=ROOT)
    assert ok.returncode == 0
    assert ok.stdout == '{"seq":1,"market":"A","event":{"type":"market_opened","at":0,"rules":' \
        '{"offer_ttl":86400,"enforce_mandate":true}}}\n'
    bad = subprocess.run([*cmd, str(tmp_path / "nope")], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and "no ledger here" in bad.stderr and "Traceback" not in bad.stderr
    unknown = subprocess.run([*cmd, str(tmp_path), "Z" * 5_000], capture_output=True, text=True, cwd=ROOT)
    assert unknown.returncode == 2 and unknown.stdout == ""
    assert f"no market '{'Z' * 100}' in this ledger; its markets are A" in unknown.stderr


@pytest.mark.parametrize(
    "bad",
    [
        ListingRepriced(at=7, listing_id="L1", ask=10**4_300),
        ListingRepriced(at=7, listing_id="L1", ask=10**5_000),
        ListingRepriced(at=7, listing_id="L1", ask=MAX_CENTS + 1),
        OfferEnded(at=7, offer_id="O1", listing_id="L1", status="sideways", message=""),
    ],
)
def test_an_event_that_would_not_read_back_is_refused_and_nothing_is_lost(tmp_path: Path, bad: object) -> None:
    with Ledger(tmp_path / "ledger.sqlite", create=True) as ledger:
        ledger.append("A", [MarketOpened(at=0, rules=Rules()), ParticipantJoined(at=0, participant=person("ann"))])
        before = list(ledger.export_lines())
        fine = MessageSent(at=7, message=Message(listing_id="L1", sender="ann", text="hello", at=7))
        with pytest.raises(LedgerError, match=r"event 4 of market A \(\w+ at 7s\) would not read back") as info:
            ledger.append_many([("A", fine), ("A", bad)])  # type: ignore[list-item]
        assert "none of its batch was written" in str(info.value) and len(str(info.value)) < 600
        assert ledger.last_seq == 2 and list(ledger.export_lines()) == before
        ledger.append("A", [fine])
        assert ledger.last_seq == 3
    with Ledger(tmp_path) as reopened:
        assert [r.event for r in reopened.records()][-1] == fine


def test_a_batch_longer_than_one_read_back_is_read_back_whole(tmp_path: Path) -> None:
    notes = [MessageSent(at=7, message=Message(listing_id="L1", sender="ann", text=f"note {n}", at=7))
             for n in range(2 * READ_BACK + 50)]
    bad = OfferEnded(at=7, offer_id="O1", listing_id="L1", status="sideways", message="")
    with Ledger(tmp_path / "ledger.sqlite", create=True) as ledger:
        ledger.append("A", [MarketOpened(at=0, rules=Rules())])
        late = [("A", e) for e in notes[:READ_BACK + 30]] + [("A", bad)] + [("A", e) for e in notes[READ_BACK + 30:]]
        with pytest.raises(LedgerError, match=rf"event {READ_BACK + 32} of market A \(offer_ended at 7s\)"):
            ledger.append_many(late)  # type: ignore[arg-type]
        assert ledger.last_seq == 1
        ledger.append("A", notes)
        assert [r.event for r in ledger.records()][1:] == notes and ledger.last_seq == len(notes) + 1


def test_a_refusal_is_stored_typed_with_its_code_and_old_ledgers_still_read(tmp_path: Path) -> None:
    refused = ActionRejected(at=3, actor="bob", action=MakeOffer(listing_id="L1", amount=900),
                             code=RejectionCode.WANT_FILLED, reason="Your principal asked for 1 unit ...")
    with Ledger(tmp_path / "ledger.sqlite", create=True) as ledger:
        ledger.append("A", [refused])
        (line,) = ledger.export_lines()
        (record,) = ledger.records()
    assert '"action":{"type":"make_offer","listing_id":"L1","amount":900,"message":""},"code":"want_filled"' in line
    assert record.event == refused and isinstance(record.event.action, MakeOffer)  # type: ignore[union-attr]
    # written before refusals carried codes: the action was a dict, there was no code
    old = parse_event('{"type":"action_rejected","at":3,"actor":"bob","action":{"type":"accept","offer_id":"O1",'
                      '"message":""},"reason":"Offer O1 is addressed to ann, not you; only they can answer it."}')
    assert old.code is RejectionCode.UNSPECIFIED and old.action == Accept(offer_id="O1")  # type: ignore[union-attr]


def test_rejection_codes_are_stable() -> None:
    """Codes are for programs: they are only ever added, never renamed (ledgers and exports hold them)."""
    assert {c.value for c in RejectionCode} >= {
        "not_participant", "already_joined", "no_such_item", "no_such_listing", "no_such_offer", "no_such_participant",
        "not_owner", "item_sold", "already_listed", "listing_closed", "offer_closed", "own_listing", "not_recipient",
        "not_proposer", "message_to_self", "not_positive", "same_price", "insufficient_funds", "above_max_price",
        "below_reserve", "not_wanted", "want_filled", "want_in_flight", "declined_by_principal", "unknown_action",
        "unspecified",
    }
    assert {c for c in RejectionCode if c.mandate} == {
        RejectionCode.ABOVE_MAX_PRICE, RejectionCode.BELOW_RESERVE, RejectionCode.NOT_WANTED,
        RejectionCode.WANT_FILLED, RejectionCode.WANT_IN_FLIGHT,
    }
