"""Short free-text messages in a principal's style: templated and varied, no model."""

from __future__ import annotations

import random
from string import Formatter

from market.domain import Item, Participant
from market.money import format_money

_TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
    "offer": {
        "friendly": (
            "Hi {other}! Would you take {amount} for the {title}?",
            "Hey, I'd love the {title}. Is {amount} okay?",
        ),
        "direct": ("{amount} for the {title}.", "I can pay {amount} for the {title}."),
        "formal": ("Good day. I would like to offer {amount} for your {title}.",),
        "playful": ("How about {amount} for the {title}? My desk feels empty without one.",),
        "terse": ("{amount}?", "{amount} for it."),
        "chatty": ("Oh, I've been hunting for a {title} for ages! Could you do {amount}?",),
    },
    "counter_seller": {
        "friendly": ("Thanks for the offer! I could do {amount}.", "Close! Meet me at {amount}?"),
        "direct": ("{amount} and it's yours.", "Lowest I'd go right now is {amount}."),
        "formal": ("Thank you for your interest. I could accept {amount}.",),
        "playful": ("{amount} and I'll throw in a smile.",),
        "terse": ("{amount}.",),
        "chatty": ("It's honestly in {condition} shape, so I was hoping for {amount}. Would that work?",),
    },
    "counter_buyer": {
        "friendly": ("That's a bit much for me. Could we say {amount}?",),
        "direct": ("I can do {amount}.",),
        "formal": ("I am afraid that exceeds my budget. Might {amount} be acceptable?",),
        "playful": ("My wallet is squeaking. {amount}?",),
        "terse": ("{amount}.",),
        "chatty": ("I'd really like it, but my budget is tight this week. Maybe {amount}?",),
    },
    "accept": {
        "friendly": ("Deal! {amount} it is, thank you!",),
        "direct": ("Deal at {amount}.",),
        "formal": ("Agreed at {amount}. Thank you.",),
        "playful": ("Sold, at {amount}! High five.",),
        "terse": ("Deal.",),
        "chatty": ("Wonderful, {amount} works for me. Thanks so much!",),
    },
    "reject": {
        "friendly": ("Sorry, I can't go that low.",),
        "direct": ("No, too low.",),
        "formal": ("Thank you, but I must decline.",),
        "playful": ("Alas, no.",),
        "terse": ("No.",),
        "chatty": ("Ah, I'm sorry, that's a bit under what I can accept.",),
    },
    "listing": {
        "friendly": ("{title} in {condition} condition. Happy to answer questions!",),
        "direct": ("{title}, {condition}. {amount}.",),
        "formal": ("For sale: {title}, {condition} condition.",),
        "playful": ("{title} looking for a new home ({condition}).",),
        "terse": ("{title}.",),
        "chatty": ("Selling my {title}; it's in {condition} condition and served me well.",),
    },
}

_QUIRKS = {
    "uses emoji": lambda text, rng: text + rng.choice((" 🙂", " 🙌", " 👍")),
    "mentions their cat": lambda text, rng: text + (" My cat approves." if rng.random() < 0.3 else ""),
    "signs off with a pun": lambda text, rng: text + (" Deal or no deal!" if rng.random() < 0.3 else ""),
    "always says please": lambda text, rng: text.replace("?", ", please?", 1) if "?" in text else text + " Please.",
    "asks about pickup": lambda text, rng: text + (" Can I pick it up at the office?" if rng.random() < 0.4 else ""),
    "writes in lowercase": lambda text, rng: text.lower(),
}


_FIELDS: dict[str, frozenset[str]] = {
    template: frozenset(name for _, name, _, _ in Formatter().parse(template) if name)
    for by_style in _TEMPLATES.values() for templates in by_style.values() for template in templates
}
"""The fields each template names."""


def write(
    kind: str, principal: Participant, rng: random.Random, *, amount: int = 0,
    item: Item | None = None, other: str = "",
) -> str:
    """A message of ``kind`` ("offer", "accept", ...) in ``principal``'s style."""
    by_style = _TEMPLATES[kind]
    template = rng.choice(by_style.get(principal.style) or by_style["friendly"])
    needs = _FIELDS[template]
    if needs:  # only the fields the template names are worked out (a price is formatted in most)
        values: dict[str, str] = {}
        if "amount" in needs:
            values["amount"] = format_money(amount)
        if "title" in needs:
            values["title"] = item.title if item else "item"
        if "condition" in needs:
            values["condition"] = item.condition.value if item else "good"
        if "other" in needs:
            values["other"] = other.split(" ")[0] or "there"
        text = template.format_map(values)
    else:
        text = template
    for quirk in principal.quirks:
        if quirk in _QUIRKS:
            text = _QUIRKS[quirk](text, rng)
    return text
