"""Stored fairness ratings of a run: each principal rates each of their deals from 1 (unfair) to 7 (fair).

Ratings live in the run folder as ``fairness.jsonl``, one JSON object a line::

    {"market": "B", "deal_id": "D12", "participant_id": "p007", "rating": 5,
     "source": "simulated" | "model" | "person", "comment": ""}

A ``survey`` table in ``ledger.sqlite`` with the same columns is read too.
``simulated`` ratings are an assumption of the simulation, not anyone's answer.

:class:`FairnessRating` is the one schema of a stored rating: every writer (the Slack survey,
the model survey, the simulated ratings of the analysis) builds its lines through it and every
reader validates them with it.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError

FAIRNESS_FILE = "fairness.jsonl"
Source = Literal["simulated", "model", "person"]
"""Who gave a rating: the simulation's assumption, a tier's model asked after the run, or a person in Slack."""
SOURCES: tuple[str, ...] = get_args(Source)
Score = Annotated[int, Field(ge=1, le=7)]
"""A rating: 1 (very unfair) to 7 (very fair)."""
MAX_COMMENT = 5000
"""The longest comment a stored rating holds. The bound of what is kept, not of what is asked: the Slack form
takes at most 1,000 characters and the model survey asks for at most 500 (its tool schema is part of every
recorded survey request, so it stays as recorded); 5,000 reads every line either has ever written, where 500
would make a stored person's longer comment unreadable. The file and the ledger's TEXT column hold any length."""
SCHEMA: dict[str, Any] = {"run": pl.Utf8, "market": pl.Utf8, "deal_id": pl.Utf8, "participant_id": pl.Utf8,
                          "rating": pl.Int64, "source": pl.Utf8, "comment": pl.Utf8}
"""The columns of the ``ratings`` table."""


class RatingsError(ValueError):
    """A stored rating that cannot be read; the message names the file and line."""


class FairnessRating(BaseModel):
    """One principal's rating of one of their deals (a line of ``fairness.jsonl``)."""

    model_config = ConfigDict(extra="forbid")

    market: str = Field(min_length=1)
    deal_id: str = Field(min_length=1)
    participant_id: str = Field(min_length=1)
    rating: Score
    source: Source
    comment: str = Field("", max_length=MAX_COMMENT)

    def line(self) -> str:
        """This rating as its line of ``fairness.jsonl`` (compact JSON, fields in order, newline-terminated)."""
        return json.dumps(self.model_dump(), separators=(",", ":"), ensure_ascii=False) + "\n"


def read_ratings(run_dir: Path, run_id: str | None = None) -> pl.DataFrame:
    """Stored ratings of one run folder: ``fairness.jsonl`` and a ``survey`` table in the ledger, if present.

    ``run_id`` fills the ``run`` column (default: the folder's name).
    """
    run = run_id or run_dir.name
    rows: list[tuple[object, ...]] = []
    path = run_dir / FAIRNESS_FILE
    if path.is_file():
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                r = FairnessRating.model_validate_json(line)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "line"
                raise RatingsError(f"{path}: line {n}: {where}: {first['msg']}") from None
            rows.append((run, r.market, r.deal_id, r.participant_id, r.rating, r.source, r.comment))
    rows += _survey_table(run_dir, run)
    return pl.DataFrame(rows, schema=SCHEMA, orient="row")


def _survey_table(run_dir: Path, run: str) -> list[tuple[object, ...]]:
    ledger = run_dir / "ledger.sqlite"
    if not ledger.is_file():
        return []
    db = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)
    try:
        found = db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='survey'").fetchone()
        if not found:
            return []
        out = []
        for market, deal_id, pid, rating, source, comment in db.execute(
            "SELECT market, deal_id, participant_id, rating, source, COALESCE(comment, '') FROM survey"
        ):
            try:
                r = FairnessRating(market=market, deal_id=deal_id, participant_id=pid, rating=rating,
                                   source=source, comment=comment)
            except ValidationError as exc:
                raise RatingsError(f"{ledger}: survey table: {exc.errors()[0]['msg']}") from None
            out.append((run, r.market, r.deal_id, r.participant_id, r.rating, r.source, r.comment))
        return out
    except sqlite3.DatabaseError as exc:
        raise RatingsError(f"{ledger}: survey table cannot be read ({exc})") from None
    finally:
        db.close()
