"""The end-of-week fairness survey: its modal (pure), reading answers, storing them for the analysis.

Answers go to ``fairness.jsonl`` in the run folder, one JSON line per deal, each a
:class:`market.ratings.FairnessRating` with source ``"person"``:
``{"market", "deal_id", "participant_id", "rating" (1-7), "source": "person", "comment"}``.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from market.domain import Deal
from market.money import format_money
from market.ratings import FAIRNESS_FILE, FairnessRating
from slackbot.blocks import MAX_BLOCKS, plain, section
from slackbot.escape import safe

SURVEY_CALLBACK = "deal_survey"
FORM_COMMENT = 1000
"""The longest comment the form takes (within the stored rating's ``MAX_COMMENT``; Slack allows 3,000)."""
SCALE = {1: "1 — very unfair", 2: "2", 3: "3", 4: "4 — neither", 5: "5", 6: "6", 7: "7 — very fair"}
_CHOICES = {str(k) for k in SCALE}
_write_lock = threading.Lock()
MAX_BLOCK_ID = 255  # Slack's limit on a block_id


def survey_view(market: str, deals: list[tuple[Deal, str]]) -> dict[str, Any]:
    """One rating (1-7) per deal (``(deal, item title)``), plus a comment."""
    blocks: list[dict[str, Any]] = [section("How fair was each deal, for you? 1 = very unfair, 7 = very fair.")]
    for deal, title in deals[: (MAX_BLOCKS - 2)]:
        blocks.append({
            "type": "input", "block_id": f"deal:{deal.id}",
            "label": plain(f"{title} — {format_money(deal.price)}"),
            "element": {"type": "static_select", "action_id": "rating",
                        "options": [{"text": plain(v), "value": str(k)} for k, v in SCALE.items()]},
        })
    blocks.append({"type": "input", "block_id": "comment", "optional": True, "label": plain("Anything to add?"),
                   "element": {"type": "plain_text_input", "action_id": "value", "multiline": True,
                               "max_length": FORM_COMMENT}})
    return {"type": "modal", "callback_id": SURVEY_CALLBACK, "private_metadata": market,
            "title": plain("Fairness survey"), "submit": plain("Send"), "blocks": blocks}


def parse_survey(values: Any) -> tuple[dict[str, int], str] | dict[str, str]:
    """Ratings by deal id and the comment, or errors by block id (at most ``MAX_BLOCKS``; block ids longer
    than ``MAX_BLOCK_ID`` are not deals of ours and are passed over)."""
    ratings: dict[str, int] = {}
    errors: dict[str, str] = {}
    if not isinstance(values, dict):
        values = {}
    for block_id, fields in values.items():
        if not block_id.startswith("deal:") or len(block_id) > MAX_BLOCK_ID:
            continue
        if len(errors) >= MAX_BLOCKS:
            break
        chosen = _dig(fields, "rating", "selected_option", "value")
        if not isinstance(chosen, str) or chosen not in _CHOICES:
            errors[block_id] = "Pick a rating from 1 to 7"
            continue
        ratings[block_id.removeprefix("deal:")] = int(chosen)
    comment = _dig(values, "comment", "value", "value")
    return errors if errors else (ratings, comment[:FORM_COMMENT] if isinstance(comment, str) else "")


def _dig(data: Any, *keys: str) -> Any:
    """``data[k1][k2]...``, or None where a level is missing or not an object."""
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def store_answers(run_dir: Path, market: str, participant_id: str, ratings: dict[str, int], comment: str,
                  allowed: set[str]) -> int:
    """Append answers for deals ``allowed`` to this person; a deal already rated is not stored twice."""
    path = Path(run_dir) / FAIRNESS_FILE
    with _write_lock:
        seen = set()
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                row = json.loads(line)
                seen.add((row["market"], row["deal_id"], row["participant_id"]))
        rows = [
            FairnessRating(market=market, deal_id=deal_id, participant_id=participant_id, rating=rating,
                           source="person", comment=comment)
            for deal_id, rating in sorted(ratings.items())
            if deal_id in allowed and (market, deal_id, participant_id) not in seen
        ]
        with path.open("a", encoding="utf-8") as handle:
            handle.writelines(row.line() for row in rows)
    return len(rows)


__all__ = ["FAIRNESS_FILE", "SURVEY_CALLBACK", "parse_survey", "safe", "store_answers", "survey_view"]
