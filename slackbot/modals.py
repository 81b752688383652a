"""The join modal: its view (pure) and reading a submission into the person's mandate (pure).

The form asks for what :class:`market.mandate.Mandate` holds (sell lines, want lines, a style, an
autonomy mode) and reads a submission into one; the rules (least at most the ask, at most
``MAX_LINES`` lines, the styles and modes offered) are the mandate's.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from market.mandate import (
    AUTONOMY,
    AUTONOMY_LABELS,
    DEFAULT_AUTONOMY,
    DEFAULT_STYLE,
    MAX_LINES,
    MAX_TITLE,
    STYLES,
    Mandate,
    SellLine,
    WantLine,
)
from market.money import MoneyError, format_money, parse_money
from slackbot.blocks import plain
from slackbot.escape import cut, entry

JOIN_CALLBACK = "deal_join"


def _line_title(title: str) -> str:
    return _SPLIT.sub(" ", title).strip()


def form_text(form: Mandate) -> tuple[str, str]:
    """The sells and wants fields' text for the mandate ``form`` (what a person would type)."""
    sells = "\n".join(f"{_line_title(s.title)}, {format_money(s.ask)}, {format_money(s.least)}" for s in form.sells)
    wants = "\n".join(f"{_line_title(w.title)}, {format_money(w.max_price)}" for w in form.wants)
    return sells, wants


def join_view(market: str, initial: Mandate | None = None) -> dict[str, Any]:
    """The modal ``/deal join`` opens (filled in with ``initial``: a mandate from the interview to confirm)."""
    sells, wants = form_text(initial) if initial else ("", "")

    def text_input(block_id: str, label: str, hint: str, placeholder: str, optional: bool = False,
                   value: str = "") -> dict[str, Any]:
        element: dict[str, Any] = {"type": "plain_text_input", "action_id": "value", "multiline": True,
                                   "max_length": 2000, "placeholder": plain(placeholder, 150)}
        if value:
            element["initial_value"] = value[:2000]
        return {"type": "input", "block_id": block_id, "optional": optional, "label": plain(label),
                "hint": plain(hint, 150), "element": element}

    style = initial.style if initial else DEFAULT_STYLE
    autonomy = initial.autonomy if initial else DEFAULT_AUTONOMY

    return {
        "type": "modal", "callback_id": JOIN_CALLBACK, "private_metadata": market,
        "title": plain("Join the market"), "submit": plain("Join"), "close": plain("Cancel"),
        "blocks": [
            text_input("sells", "What you sell", "One per line: title, asking price, least you accept",
                       "Desk lamp, $18, $12", optional=bool(initial) and not sells, value=sells),
            text_input("wants", "What you want", "One per line: title, most you would pay",
                       "Monitor riser, $20", optional=True, value=wants),
            {"type": "input", "block_id": "style", "label": plain("Your agent's style"),
             "element": {"type": "static_select", "action_id": "value",
                         "initial_option": _option(style, style),
                         "options": [_option(s, s) for s in STYLES]}},
            {"type": "input", "block_id": "autonomy", "label": plain("How much your agent decides"),
             "element": {"type": "radio_buttons", "action_id": "value",
                         "initial_option": _option(autonomy, AUTONOMY_LABELS[autonomy]),
                         "options": [_option(k, v) for k, v in AUTONOMY_LABELS.items()]}},
        ],
    }


def _option(value: str, text: str) -> dict[str, Any]:
    return {"text": plain(text), "value": value}


def _value(values: dict[str, Any], block: str) -> Any:
    """What a block's element holds (a select's chosen value), or None when the block is missing or odd."""
    fields = values.get(block)
    element = fields.get("value") if isinstance(fields, dict) else None
    if not isinstance(element, dict):
        return None
    if "selected_option" in element:
        option = element["selected_option"]
        return option.get("value") if isinstance(option, dict) else None
    return element.get("value")


_SPLIT = re.compile(r"\s*[,|;]\s*")


def parse_join(values: dict[str, Any]) -> Mandate | dict[str, str]:
    """The mandate a join submission gives, or errors by block id (shown next to the field in the modal)."""
    errors: dict[str, str] = {}
    if not isinstance(values, dict):
        values = {}
    texts = {block: _value(values, block) for block in ("sells", "wants")}
    for block, text in texts.items():
        if text is not None and not isinstance(text, str):
            errors[block] = "Write one item per line, as text"
            texts[block] = None
    sells: list[SellLine] = []
    for n, line in enumerate(_lines(texts["sells"]), start=1):
        parts = _SPLIT.split(line)
        if len(parts) != 3 or not parts[0]:
            errors["sells"] = f"Line {n}: write title, asking price, least you accept (e.g. Desk lamp, $18, $12)"
            break
        try:
            sells.append(SellLine(title=cut(parts[0], MAX_TITLE), ask=parse_money(parts[1]),
                                  least=parse_money(parts[2])))
        except MoneyError as exc:
            errors["sells"] = f"Line {n}: {exc}"
            break
        except ValidationError:  # the mandate's rule: an ask above 0, a least at most the ask
            errors["sells"] = f"Line {n}: the least you accept must not exceed the asking price"
            break
    wants: list[WantLine] = []
    for n, line in enumerate(_lines(texts["wants"]), start=1):
        parts = _SPLIT.split(line)
        if len(parts) != 2 or not parts[0]:
            errors["wants"] = f"Line {n}: write title, most you would pay (e.g. Monitor riser, $20)"
            break
        try:
            wants.append(WantLine(title=cut(parts[0], MAX_TITLE), max_price=parse_money(parts[1])))
        except MoneyError as exc:
            errors["wants"] = f"Line {n}: {exc}"
            break
    if not sells and not wants and not errors:
        errors["sells"] = "Name at least one thing to sell or to buy"
    if len(sells) > MAX_LINES:
        errors["sells"] = f"At most {MAX_LINES} items"
    if len(wants) > MAX_LINES:
        errors["wants"] = f"At most {MAX_LINES} wants"
    style = _value(values, "style") or DEFAULT_STYLE
    autonomy = _value(values, "autonomy") or DEFAULT_AUTONOMY
    if not isinstance(style, str) or style not in STYLES:
        errors["style"] = "Pick one of the styles"
    if not isinstance(autonomy, str) or autonomy not in AUTONOMY:
        errors["autonomy"] = "Pick one"
    if errors:
        return errors
    return Mandate(sells=sells, wants=wants, style=style, autonomy=autonomy)  # type: ignore[arg-type]


def _lines(text: str | None) -> list[str]:
    """The non-blank lines of a field, after the entry rule (``escape.entry``)."""
    return [line.strip() for line in entry(text or "").split("\n") if line.strip()]
