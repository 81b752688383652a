"""Loading run folders: tables match the ledger's own summary; bad input gives clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from analysis import AnalysisError, load_run, load_runs
from analysis.export import export
from analysis.fairness import ratings
from market import exchange
from market.actions import Accept, Action, Counter, Delist, ListItem, MakeOffer, Reject, Reprice, SendMessage, Withdraw
from market.domain import Item, Participant, Want
from market.events import Event, MarketOpened, ParticipantJoined, Rules
from market.ledger import Ledger, LedgerError
from market.scenario import ScenarioError
from market.state import MarketState


def test_tables_agree_with_the_runs_summary(smoke_run: Path) -> None:
    data = load_run(smoke_run)
    summary = json.loads((smoke_run / "summary.json").read_text())
    market = summary["markets"][0]
    assert data.deals.height == market["deals"]
    assert data.deals["price"].sum() == market["volume_cents"]
    assert data.listings.height == market["listings"]
    assert data.offers.height == market["offers"]
    assert data.participants.height == market["participants"]
    for tier, figures in market["tiers"].items():
        assert data.participants.filter(pl.col("tier") == tier).height == figures["participants"]
        assert data.deals.filter(pl.col("seller_tier") == tier).height == figures["deals_as_seller"]
    for column in ("price", "value", "buyer_value", "seller_reserve"):
        assert data.deals.schema[column] == pl.Int64
    last = data.hourly.filter(pl.col("hour") == pl.col("hour").max())
    assert last["deals"].item() == market["deals"]
    assert last["volume"].item() == market["volume_cents"]
    money = sum(last[f"money_{t}"].item() for t in data.tiers)
    assert money == data.participants["budget"].sum()  # money is conserved in the series too
    for tier, figures in market["tiers"].items():
        assert last[f"money_{tier}"].item() == figures["money_cents"]


def test_load_runs_stacks_runs_with_a_run_column(smoke_run: Path, pairs_run: Path) -> None:
    data = load_runs([smoke_run, pairs_run])
    # both folders are called "run": they are told apart by their parent folder
    assert set(data.deals["run"].unique()) == {f"{smoke_run.parent.name}/run", f"{pairs_run.parent.name}/run"}
    assert data.deals.height == load_run(smoke_run).deals.height + load_run(pairs_run).deals.height
    assert len(data.runs) == 2
    # offline runs store no ratings (fairness is not simulated by default); simulated on request, every deal
    # side is rated under the same run ids as the deals
    assert ratings(data).height == 0
    simulated = ratings(data, simulate=True)
    assert simulated.height == 2 * data.deals.height
    assert set(simulated["run"].unique()) == set(data.deals["run"].unique())
    with pytest.raises(AnalysisError, match="given twice"):
        load_runs([smoke_run, smoke_run])


def test_not_a_folder_or_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(AnalysisError, match="no such folder"):
        load_run(tmp_path / "missing")
    with pytest.raises(AnalysisError, match="not a run folder"):
        load_run(tmp_path)
    with pytest.raises(AnalysisError, match="holds no run folders"):
        load_runs([tmp_path])


def test_run_in_progress(smoke_run: Path, copy_run) -> None:
    run = copy_run(smoke_run)
    with Ledger(run) as ledger:
        ledger.set_status("state", "running")
    with pytest.raises(AnalysisError, match=r"in progress.*--resume"):
        load_run(run)


def test_truncated_ledger(smoke_run: Path, copy_run) -> None:
    run = copy_run(smoke_run)
    ledger = run / "ledger.sqlite"
    for extra in ("-wal", "-shm"):
        Path(f"{ledger}{extra}").unlink(missing_ok=True)
    ledger.write_bytes(ledger.read_bytes()[:3000])
    with pytest.raises(AnalysisError, match=r"ledger cannot be read|truncated"):
        load_run(run)


@pytest.mark.parametrize(("text", "problem"), [
    ("seed: " + "9" * 5_000 + "\n", "scenario.yaml: line 1, column 7: an integer of 5,000 digits"),
    ("- a list\n", "scenario.yaml: expected a mapping of settings, got list"),
    ("name: [\n", "scenario.yaml: line 2, column 1: not valid YAML"),
])
def test_a_damaged_scenario_is_named_by_every_reader_of_the_run(smoke_run: Path, copy_run, tmp_path: Path,
                                                                 text: str, problem: str) -> None:
    """The loader, the export, the live page's replay, resume and the Slack watcher read a run's scenario.yaml
    through RunFolder.read_scenario (a 5,000-digit integer was a traceback in the export)."""
    from typer.testing import CliRunner

    from analysis.export import app as export_app
    from running import runner
    from running.runfolder import RunFolder, RunFolderError
    from slackbot.watch import show_tiers_of
    from watch.replay import LedgerWatch

    run = copy_run(smoke_run)
    (run / "scenario.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(AnalysisError, match=problem):
        load_run(run)
    exported = CliRunner().invoke(export_app, [str(run), "--out", str(tmp_path / "export")])
    assert exported.exit_code == 2 and problem in " ".join(exported.output.split()), exported.output
    with pytest.raises(LedgerError, match=problem):
        LedgerWatch(RunFolder.open(run))
    for read in (lambda: runner.resume(RunFolder.open(run)), lambda: show_tiers_of(run)):
        with pytest.raises((RunFolderError, ScenarioError), match=problem):
            read()


def test_an_unreadable_summary_of_a_complete_run_is_named_on_resume(smoke_run: Path, copy_run) -> None:
    from running import runner
    from running.runfolder import RunFolder, RunFolderError

    run = copy_run(smoke_run)
    (run / "summary.json").write_text("{bad", encoding="utf-8")
    with pytest.raises(RunFolderError, match=r"summary.json: not valid JSON .*; the run is complete"):
        runner.resume(RunFolder.open(run))


@pytest.mark.slow
def test_cli_bad_input_exits_2_without_traceback(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "analysis.report", str(tmp_path)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2
    assert "not a run folder" in result.stderr
    assert "Traceback" not in result.stderr


def test_load_run_carries_the_exported_negotiation(smoke_run: Path, copy_run, tmp_path: Path) -> None:
    export(smoke_run, "parquet", tmp_path / "export")
    data = load_run(smoke_run)
    for table in ("offers", "messages", "transcripts"):
        exported = pl.read_parquet(tmp_path / "export" / f"{table}.parquet")
        assert exported.height > 0 and exported.equals(getattr(data, table)), table
    stacked = load_runs([smoke_run, copy_run(smoke_run)])
    assert stacked.transcripts.height == 2 * data.transcripts.height
    assert stacked.transcripts["run"].n_unique() == 2


def _every_turn(folder: Path) -> Path:
    """A ledger through the real exchange with every kind of transcript turn on one listing, and a delisting."""
    lamp = Item(id="ann-i1", kind="lamp", title="Lamp", category="home", value=2000)
    vase = Item(id="ann-i2", kind="vase", title="Vase", category="home", value=1000)
    want = Want(kind="lamp", title="Lamp", max_price=3000)
    people = [Participant(id="ann", name="Ann", budget=5000, items=(lamp, vase), tier="small"),
              Participant(id="bo", name="Bo", budget=5000, wants=(want,), tier="frontier"),
              Participant(id="cy", name="Cy", budget=5000, wants=(want,), tier="small")]
    state = MarketState()
    events: list[Event] = [MarketOpened(at=0, rules=Rules(offer_ttl=1000)),
                           *(ParticipantJoined(at=0, participant=p) for p in people)]
    for event in events:
        state.evolve(event)
    steps: list[tuple[str, Action, int] | int] = [
        ("ann", ListItem(item_id="ann-i1", ask=2800, description="A good lamp."), 100),
        ("ann", Reprice(listing_id="L1", ask=2600), 150),
        ("bo", SendMessage(listing_id="L1", text="Does it work?"), 200),
        ("bo", MakeOffer(listing_id="L1", amount=1500, message="15?"), 300),   # O1, withdrawn
        ("bo", Withdraw(offer_id="O1"), 400),
        ("bo", MakeOffer(listing_id="L1", amount=1600), 500),                  # O2, rejected (no text)
        ("ann", Reject(offer_id="O2", message="Too low."), 600),
        ("bo", MakeOffer(listing_id="L1", amount=1700, message="17?"), 700),   # O3, expires at 1700
        1700,                                                                  # the market's clock
        ("bo", MakeOffer(listing_id="L1", amount=1800, message="18?"), 1800),  # O4, countered by O6
        ("cy", MakeOffer(listing_id="L1", amount=1900), 1850),                 # O5, closed by the sale
        ("ann", Counter(offer_id="O4", amount=2200, message="22."), 1900),     # O6
        ("bo", Accept(offer_id="O6", message="Deal."), 2000),
        ("ann", ListItem(item_id="ann-i2", ask=1200), 2100),
        ("ann", Delist(listing_id="L2"), 2200),
    ]
    for step in steps:
        if isinstance(step, int):
            expired = exchange.expire(state, step)
            for event in expired:
                state.evolve(event)
            events += expired
            continue
        outcome = exchange.apply(state, *step)  # evolves the state
        assert not isinstance(outcome, exchange.Rejection), outcome
        events += outcome
    folder.mkdir()
    (folder / "scenario.yaml").write_text("name: turns\nseed: 1\ndays: 1\ntiers: {frontier: {}, small: {}}\n")
    (folder / "catalog.csv").write_text("kind,title,category,value\nlamp,Lamp,home,20.00\n")
    with Ledger(folder, create=True) as ledger:
        ledger.append("M", events)
        ledger.set_status("state", "complete")
    return folder


def test_every_turn_of_a_haggle_is_in_the_transcript(tmp_path: Path) -> None:
    data = load_run(_every_turn(tmp_path / "run"))
    turns = data.transcripts.select("listing_id", "seq", "at", "kind", "offer_id", "sender", "to", "amount", "text")
    assert turns.rows() == [
        ("L1", 1, 100, "listing", None, "ann", None, 2800, "A good lamp."),
        ("L1", 2, 150, "reprice", None, "ann", None, 2600, None),
        ("L1", 3, 200, "message", None, "bo", None, None, "Does it work?"),
        ("L1", 4, 300, "offer", "O1", "bo", "ann", 1500, "15?"),
        ("L1", 5, 400, "withdraw", "O1", "bo", "ann", 1500, None),
        ("L1", 6, 500, "offer", "O2", "bo", "ann", 1600, None),
        ("L1", 7, 600, "reject", "O2", "ann", "bo", 1600, "Too low."),
        ("L1", 8, 700, "offer", "O3", "bo", "ann", 1700, "17?"),
        ("L1", 9, 1700, "expire", "O3", None, None, 1700, None),
        ("L1", 10, 1800, "offer", "O4", "bo", "ann", 1800, "18?"),
        ("L1", 11, 1850, "offer", "O5", "cy", "ann", 1900, None),
        ("L1", 12, 1900, "counter", "O6", "ann", "bo", 2200, "22."),
        ("L1", 13, 2000, "accept", "O6", "bo", "ann", 2200, "Deal."),
        ("L1", 14, 2000, "deal", "O6", "ann", "bo", 2200, None),
        ("L1", 15, 2000, "close", "O5", None, None, 1900, None),
        ("L2", 1, 2100, "listing", None, "ann", None, 1200, "Vase"),
        ("L2", 2, 2200, "delist", None, "ann", None, None, None),
    ]
    offers = data.offers.select("offer_id", "recipient", "counter_of", "expires_at", "text", "status", "ended_at",
                                "ended_by", "reply_text", "deal_id")
    assert offers.rows() == [
        ("O1", "ann", None, 1300, "15?", "withdrawn", 400, "bo", None, None),
        ("O2", "ann", None, 1500, None, "rejected", 600, "ann", "Too low.", None),
        ("O3", "ann", None, 1700, "17?", "expired", 1700, None, None, None),
        ("O4", "ann", None, 2800, "18?", "countered", 1900, "ann", "22.", None),
        ("O5", "ann", None, 2850, None, "closed", 2000, None, None, None),
        ("O6", "bo", "O4", 2900, "22.", "accepted", 2000, "bo", "Deal.", "D1"),
    ]
    # messages: every turn that said something, nothing else
    assert data.messages.select("kind", "offer_id", "sender", "to", "text").rows() == [
        ("listing", None, "ann", None, "A good lamp."), ("message", None, "bo", None, "Does it work?"),
        ("offer", "O1", "bo", "ann", "15?"), ("reject", "O2", "ann", "bo", "Too low."),
        ("offer", "O3", "bo", "ann", "17?"), ("offer", "O4", "bo", "ann", "18?"),
        ("counter", "O6", "ann", "bo", "22."), ("accept", "O6", "bo", "ann", "Deal."),
        ("listing", None, "ann", None, "Vase"),
    ]
