"""Fairness ratings: not simulated by default, stored answers read back (people's answers win)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import polars as pl
import pytest

from analysis import AnalysisError, load_run
from analysis.fairness import (
    FAIRNESS_FILE,
    NOT_SIMULATED,
    fairness_by_tier,
    rated_deals,
    rating_label,
    ratings,
    read_ratings,
    simulate_rating,
    write_simulated,
)


def test_simulated_rating_is_seeded_bounded_and_follows_surplus() -> None:
    assert simulate_rating(0.3, "k") == simulate_rating(0.3, "k")
    good = [simulate_rating(0.5, f"k{i}") for i in range(300)]
    bad = [simulate_rating(-0.5, f"k{i}") for i in range(300)]
    assert all(1 <= r <= 7 for r in good + bad)
    assert sum(good) / 300 > sum(bad) / 300 + 2


def test_fairness_is_not_simulated_unless_asked(smoke_run: Path, copy_run) -> None:
    data = load_run(smoke_run)
    assert not (smoke_run / FAIRNESS_FILE).exists() and ratings(data).height == 0  # the run stores none
    assert rating_label(rated_deals(data, ratings(data))) == "fairness rating (none: not simulated)"
    assert "not simulated" in NOT_SIMULATED and "4.05 vs 4.06" in NOT_SIMULATED
    simulated = ratings(data, simulate=True)  # the stated rule, on request, labelled as such
    assert simulated.height == 2 * data.deals.height and set(simulated["source"]) == {"simulated"}
    assert rating_label(rated_deals(data, simulated)) == "simulated fairness rating"
    run = copy_run(smoke_run)
    assert write_simulated(run, data) == 2 * data.deals.height and write_simulated(run, data) == 0


def test_a_persons_answer_wins_over_the_simulated_one(smoke_run: Path, copy_run) -> None:
    run = copy_run(smoke_run)
    data = load_run(run)
    deal = data.deals.row(0, named=True)
    answer = {"market": deal["market"], "deal_id": deal["deal_id"], "participant_id": deal["buyer"], "rating": 1,
              "source": "person", "comment": "felt rushed"}
    with (run / FAIRNESS_FILE).open("a") as out:
        out.write(json.dumps(answer) + "\n")
    rated = rated_deals(data, ratings(data, simulate=True))
    mine = rated.filter((pl.col("deal_id") == deal["deal_id"]) & (pl.col("participant_id") == deal["buyer"]))
    assert mine["rating"].to_list() == [1] and mine["source"].to_list() == ["person"]
    assert rated.height == 2 * data.deals.height
    assert fairness_by_tier(rated)["people"].sum() == 1


def test_survey_table_in_the_ledger_is_read(smoke_run: Path, copy_run) -> None:
    run = copy_run(smoke_run)
    deal = load_run(run).deals.row(0, named=True)
    db = sqlite3.connect(run / "ledger.sqlite")
    db.execute("CREATE TABLE survey (market TEXT, deal_id TEXT, participant_id TEXT, rating INTEGER, "
               "source TEXT, comment TEXT)")
    db.execute("INSERT INTO survey VALUES (?, ?, ?, 6, 'person', NULL)",
               (deal["market"], deal["deal_id"], deal["seller"]))
    db.commit()
    db.close()
    people = read_ratings(run).filter(pl.col("source") == "person")
    assert people.select("participant_id", "rating").rows() == [(deal["seller"], 6)]


def test_a_bad_line_names_the_line_and_field(tmp_path: Path) -> None:
    (tmp_path / FAIRNESS_FILE).write_text(
        '{"market":"A","deal_id":"D1","participant_id":"p1","rating":5,"source":"person"}\n'
        '{"market":"A","deal_id":"D2","participant_id":"p1","rating":9,"source":"person"}\n')
    with pytest.raises(AnalysisError, match=r"line 2: rating"):
        read_ratings(tmp_path)


def test_the_noticed_intervals_do_not_depend_on_the_order_of_the_rows(smoke_run: Path) -> None:
    """The bootstrap draws principals by position: the same run gives the same interval whatever order its
    tables come in (group_by's order is not fixed, and the report differed from one writing to the next)."""
    from dataclasses import replace

    from analysis.fairness import noticed

    data = load_run(smoke_run)
    shuffled = replace(data, deals=data.deals.sample(fraction=1.0, shuffle=True, seed=3),
                       participants=data.participants.reverse())
    first = noticed(data, ratings(data), seed=0, pair=("frontier", "small"))
    assert first[0].n > 2 and first[0].low < first[0].high
    assert noticed(shuffled, ratings(shuffled), seed=0, pair=("frontier", "small"))[0] == first[0]  # surplus gap
