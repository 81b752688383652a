"""``python -m market.export``: every table the analysis loads, with a documented schema, loadable without the
package; the loader's tables come from the same projection and keep refused actions and failed turns."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from analysis import load_run, load_runs
from analysis.export import app, export, export_schemas, model_calls
from market import exchange
from market.actions import Accept, ListItem, MakeOffer
from market.domain import Item, Participant, Want
from market.events import (
    ActionRejected,
    AgentFailed,
    DealClosed,
    ItemListed,
    MarketOpened,
    MessageSent,
    OfferEnded,
    OfferMade,
    ParticipantJoined,
    Rules,
)
from market.ledger import Ledger
from market.state import MarketState

DOC = Path(__file__).resolve().parents[2] / "docs" / "data.md"


def documented_columns() -> dict[str, set[str]]:
    """Per ``## table`` heading of docs/data.md, the first cell of every row of its table."""
    out: dict[str, set[str]] = {}
    table = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            table = line[3:].strip()
            out[table] = set()
        elif table and line.startswith("| ") and not line.startswith("| column") and not line.startswith("|---"):
            out[table].add(line.split("|")[1].strip().replace("&lt;", "<").replace("&gt;", ">"))
    return out


def test_every_written_column_is_documented(smoke_run: Path, tmp_path: Path) -> None:
    written = export(smoke_run, "parquet", tmp_path / "out")
    docs = documented_columns()
    assert set(written) == set(docs), "docs/data.md has one section per table written"
    for table in written:
        frame = pl.read_parquet(tmp_path / "out" / f"{table}.parquet")
        columns = {re.sub(r"^money_.+$", "money_<tier>", c) for c in frame.columns}
        assert columns == docs[table], table
        assert set(export_schemas(["frontier", "small"])[table]) == set(frame.columns)


def test_the_export_holds_what_the_loader_holds(pairs_run: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, [str(pairs_run), "--format", "jsonl", "--out", str(tmp_path / "j")])
    assert result.exit_code == 0, result.output
    data = load_run(pairs_run)
    deals = pl.read_ndjson(tmp_path / "j" / "deals.jsonl", schema=export_schemas()["deals"])
    key = ["market", "deal_id"]
    assert deals.sort(key).equals(data.deals.select(deals.columns).sort(key))
    for table in ("participants", "listings", "offers", "rejections", "failures"):
        got = pl.read_ndjson(tmp_path / "j" / f"{table}.jsonl", schema=export_schemas()[table])
        assert got.height == getattr(data, table).height, table
    tiers = pl.read_ndjson(tmp_path / "j" / "tiers.jsonl")
    assert tiers.select("tier", "backend", "profile").rows() == [("frontier", "offline", "frontier"),
                                                                  ("small", "offline", "small")]
    # fairness is not simulated by default: an offline run stores no ratings, and the table is there, empty
    assert (tmp_path / "j" / "ratings.jsonl").read_text(encoding="utf-8") == ""


def test_a_sweep_folder_stacks_its_runs(smoke_run: Path, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    for name in ("seed-1", "seed-2"):
        shutil.copytree(smoke_run, sweep / "cell-a" / name)
    written = export(sweep, "parquet", tmp_path / "out")
    runs = pl.read_parquet(tmp_path / "out" / "runs.parquet")
    assert runs["run"].to_list() == ["cell-a/seed-1", "cell-a/seed-2"]
    assert written["deals"] == 2 * load_run(smoke_run).deals.height
    assert set(pl.read_parquet(tmp_path / "out" / "deals.parquet")["run"]) == set(runs["run"])


def test_bad_input_names_the_folder(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, [str(tmp_path), "--format", "parquet"])
    assert result.exit_code == 2 and "holds no run folders" in result.output
    result = CliRunner().invoke(app, [str(tmp_path), "--format", "csv"])
    assert result.exit_code == 2 and "--format" in result.output


def test_model_calls_count_tokens_the_way_each_api_reports_them(tmp_path: Path) -> None:
    cassette = tmp_path / "cassette.jsonl"
    lines = [
        {"kind": "tier", "tier": "frontier"},
        {"kind": "call", "key": "k1", "market": "A", "trader": "p001", "tier": "frontier", "step": 1,
         "purpose": "turn", "api": "anthropic", "request": {"model": "claude-x"},
         "response": {"usage": {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 100,
                                "cache_creation_input_tokens": 20}}},
        {"kind": "call", "key": "k2", "market": "A", "trader": "p002", "tier": "small", "step": 1,
         "purpose": "turn", "api": "openai", "request": {"model": "small-y"},
         "response": {"usage": {"prompt_tokens": 50, "completion_tokens": 7,
                                "prompt_tokens_details": {"cached_tokens": 30}}}},
    ]
    cassette.write_text("\n".join(json.dumps(x) for x in lines) + '\n{"kind": "ca', encoding="utf-8")  # torn tail
    calls = model_calls(cassette, "r")
    assert calls.select("model", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens").rows() \
        == [("claude-x", 10, 5, 100, 20), ("small-y", 20, 7, 30, 0)]


def _handmade(folder: Path) -> Path:
    """A ledger through the real exchange with one refused action and one failed turn."""
    lamp = Item(id="ann-i1", kind="lamp", title="Lamp", category="home", value=2000)
    people = [Participant(id="ann", name="Ann", budget=5000, items=(lamp,), tier="small"),
              Participant(id="bo", name="Bo", budget=5000, wants=(Want(kind="lamp", title="Lamp", max_price=2600),),
                          tier="frontier")]
    state = MarketState()
    events = [MarketOpened(at=0, rules=Rules()), *(ParticipantJoined(at=0, participant=p) for p in people)]
    for e in events:
        state.evolve(e)
    for actor, action, at in (("ann", ListItem(item_id="ann-i1", ask=2500), 100),
                              ("bo", MakeOffer(listing_id="L1", amount=1800), 200),
                              ("bo", Accept(offer_id="O1"), 250),  # only the other party accepts: refused
                              ("ann", Accept(offer_id="O1"), 300)):
        outcome = exchange.apply(state, actor, action, at)
        if isinstance(outcome, exchange.Rejection):  # recorded as the engine records it
            outcome = [ActionRejected(at=at, actor=actor, action=action, code=outcome.code, reason=outcome.reason)]
        events += outcome
    events.append(AgentFailed(at=400, actor="bo", tier="frontier", kind="policy_error", reason="boom"))
    folder.mkdir()
    (folder / "scenario.yaml").write_text("name: handmade\nseed: 1\ndays: 1\ntiers: {frontier: {}, small: {}}\n")
    (folder / "catalog.csv").write_text("kind,title,category,value\nlamp,Lamp,home,20.00\n")  # a run folder has both
    with Ledger(folder, create=True) as ledger:
        ledger.append("M", events)
        ledger.set_status("state", "complete")
    return folder


def test_refused_actions_and_failed_turns_reach_the_loader(tmp_path: Path) -> None:
    data = load_runs([_handmade(tmp_path / "run")])
    assert data.rejections.select("actor", "tier", "action_type").rows() == [("bo", "frontier", "accept")]
    assert json.loads(data.rejections["action"].item()) ["offer_id"] == "O1"
    assert data.rejections["code"].to_list() == ["not_recipient"]
    assert data.failures.select("actor", "tier", "kind").rows() == [("bo", "frontier", "policy_error")]
    # statuses come from the exchange's state: the offer was accepted, the listing sold at 300
    assert data.offers.select("status", "ended_at").rows() == [("accepted", 300)]
    assert data.listings.select("status", "closed_at", "first_ask").rows() == [("sold", 300, 2500)]


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_export_writes_both_formats(smoke_run: Path, tmp_path: Path, fmt: str) -> None:
    written = export(smoke_run, fmt, tmp_path)  # type: ignore[arg-type]
    assert {p.name for p in tmp_path.iterdir()} == {f"{t}.{fmt}" for t in written}


def test_a_negotiation_reads_back_from_parquet_with_the_ledgers_text(smoke_run: Path, tmp_path: Path) -> None:
    export(smoke_run, "parquet", tmp_path)
    offers = pl.read_parquet(tmp_path / "offers.parquet")
    transcripts = pl.read_parquet(tmp_path / "transcripts.parquet")
    messages = pl.read_parquet(tmp_path / "messages.parquet")
    with Ledger(smoke_run) as ledger:
        events = [r.event for r in ledger.records()]
    made = {e.offer.id: e.offer for e in events if isinstance(e, OfferMade)}
    closed = {e.deal.offer_id: e for e in events if isinstance(e, DealClosed)}
    # the longest haggle that ended in a deal, walked back along counter_of to its opening offer
    accepted = offers.filter(pl.col("status") == "accepted").sort(["round", "offer_id"], descending=[True, False])
    last = accepted.row(0, named=True)
    assert last["round"] >= 3, "smoke.yaml's week has counters on counters"
    by_id = {row["offer_id"]: row for row in offers.iter_rows(named=True)}
    chain, oid = [], last["offer_id"]
    while oid is not None:
        row, sent = by_id[oid], made[oid]
        assert (row["text"], row["recipient"], row["counter_of"], row["expires_at"], row["made_at"]) == \
            (sent.message or None, sent.recipient, sent.counter_of, sent.expires_at, sent.made_at)
        if row["counter_of"] is not None:  # the offer a counter answers ended countered, with the counter's text
            earlier = by_id[row["counter_of"]]
            assert (earlier["status"], earlier["ended_at"], earlier["ended_by"], earlier["reply_text"]) == \
                ("countered", row["made_at"], row["proposer"], row["text"])
        chain.append(oid)
        oid = row["counter_of"]
    assert [by_id[o]["round"] for o in reversed(chain)] == list(range(1, last["round"] + 1))
    deal = closed[last["offer_id"]]
    assert (last["deal_id"], last["reply_text"], last["ended_by"], last["ended_at"]) == \
        (deal.deal.id, deal.message, last["recipient"], deal.at)
    # the listing's transcript says what the ledger says, in the ledger's order
    listing = last["listing_id"]
    expected: list[tuple[str, str | None, int, str | None]] = []
    for e in events:
        if isinstance(e, ItemListed) and e.listing.id == listing:
            expected.append(("listing", None, e.listing.ask, e.listing.description))
        elif isinstance(e, OfferMade) and e.offer.listing_id == listing:
            expected.append(("offer" if e.offer.counter_of is None else "counter", e.offer.id, e.offer.amount,
                             e.offer.message or None))
        elif isinstance(e, DealClosed) and e.deal.listing_id == listing:
            expected += [("accept", e.deal.offer_id, e.deal.price, e.message or None),
                         ("deal", e.deal.offer_id, e.deal.price, None)]
        elif isinstance(e, OfferEnded) and e.listing_id == listing and e.status != "countered":
            expected.append(({"rejected": "reject", "closed": "close"}[e.status], e.offer_id,
                             made[e.offer_id].amount, e.message or None))
    turns = transcripts.filter(pl.col("listing_id") == listing).sort("seq")
    assert turns.select("kind", "offer_id", "amount", "text").rows() == expected
    assert turns["seq"].to_list() == list(range(1, len(expected) + 1))
    assert chain[0] in turns["offer_id"].to_list() and set(chain) <= set(turns["offer_id"].to_list())
    # every text the ledger holds (offline agents' templated ones included) is a message, once
    texts = Counter(
        text for e in events for text in (
            e.listing.description if isinstance(e, ItemListed) else
            e.offer.message if isinstance(e, OfferMade) else
            e.message if isinstance(e, DealClosed) or (isinstance(e, OfferEnded) and e.status == "rejected") else
            e.message.text if isinstance(e, MessageSent) else "",) if text)
    assert sum(texts.values()) > 0 and Counter(messages["text"].to_list()) == texts
    assert set(messages["kind"]) >= {"listing", "offer", "counter", "accept"}
