"""Messages are the templates filled in with every field, however few fields a template names."""

from __future__ import annotations

import random

from agents import messages
from market.domain import Condition, Item, Participant
from market.money import format_money


def _plain(kind: str, principal: Participant, rng: random.Random, amount: int, item: Item | None, other: str) -> str:
    """The message with every field worked out and handed to ``str.format``."""
    by_style = messages._TEMPLATES[kind]
    template = rng.choice(by_style[principal.style] if principal.style in by_style else by_style["friendly"])
    text = template.format(
        amount=format_money(amount), title=item.title if item else "item",
        condition=item.condition.value if item else "good", other=other.split(" ")[0] or "there",
    )
    for quirk in principal.quirks:
        if quirk in messages._QUIRKS:
            text = messages._QUIRKS[quirk](text, rng)
    return text


def test_a_message_is_its_template_filled_in_with_every_field() -> None:
    item = Item(id="i1", kind="lamp", title="Desk lamp", category="home", condition=Condition.LIKE_NEW, value=2_500)
    styles = [*messages._TEMPLATES["offer"], "unknown style"]
    quirks = [(), tuple(messages._QUIRKS), ("always says please", "not a quirk")]
    amounts = [0, 5, 99, 1_250, 99_999, 100_000, 123_456_78, 100_000_000]
    checked = 0
    for kind in messages._TEMPLATES:
        for style in styles:
            for quirk in quirks:
                who = Participant(id="p", name="Pat", budget=10_000, style=style, quirks=quirk)
                for n, amount in enumerate(amounts):
                    for thing, other in [(item, "Ann Lee"), (None, ""), (item, "")]:
                        key = f"{kind}:{style}:{n}:{other}"
                        fast, plain = random.Random(key), random.Random(key)
                        text = messages.write(kind, who, fast, amount=amount, item=thing, other=other)
                        assert text == _plain(kind, who, plain, amount, thing, other)
                        assert fast.getstate() == plain.getstate(), "the same draws"
                        checked += 1
    assert checked == len(messages._TEMPLATES) * len(styles) * len(quirks) * len(amounts) * 3
