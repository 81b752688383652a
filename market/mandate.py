"""The mandate: what a person hands their agent, declared once.

A mandate names what the person sells (each line with an asking price and the least
they accept), what they want (each with the most they would pay), how their agent
talks (a style) and how much it decides alone (an autonomy mode). Money is integer
cents from 0 to ``MAX_CENTS``. The exchange enforces the limits: an agent never sells
below the least nor pays above the most.

Three places describe a person and all use these declarations: the interview's
forced tool call (``agents/llm/interviewer.py``: its schema is :class:`Mandate`'s),
the Slack join form (``slackbot/modals.py`` reads a submission into a
:class:`Mandate`) and a scenario's hand-written people (``market/scenario.py``:
their style is a :data:`Style`, their reserves and most-paid are :data:`Cents`-bounded
money). A scenario person differs where a simulation needs it: items are catalog
kinds in a condition (their value comes from the catalog, the agent picks the ask), a
reserve may be left out, and simulated people always trade autonomously.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self, get_args

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from market.domain import Frozen
from market.money import MAX_CENTS

Style = Literal["friendly", "direct", "formal", "playful", "terse", "chatty"]
"""How an agent writes to others (its messages' tone)."""
STYLES: tuple[str, ...] = get_args(Style)
"""Every style, in the order generated people draw them from (changing it changes generated weeks)."""
DEFAULT_STYLE: Style = "friendly"

Autonomy = Literal["autonomous", "approve", "manual"]
"""How much a person's agent decides alone."""
AUTONOMY_LABELS: dict[Autonomy, str] = {
    "autonomous": "Fully autonomous: my agent trades for me",
    "approve": "Approve before deal: ask me before any deal of mine closes",
    "manual": "Manual: I trade myself with buttons and /deal",
}
"""Each autonomy mode as a person is offered it (the join form's choices)."""
AUTONOMY: tuple[str, ...] = get_args(Autonomy)
"""Every autonomy mode."""
DEFAULT_AUTONOMY: Autonomy = "autonomous"

DEFAULT_BUDGET = 10_000
"""A participant's budget when the scenario names none: $100.00, as in the published week."""
MAX_LINES = 20
"""The most sell lines, and the most want lines, one mandate holds."""
MAX_TITLE = 100
"""The longest title of a sell or want line."""

Cents = Annotated[int, Field(ge=0, le=MAX_CENTS)]
"""An amount of a mandate: integer cents from 0 to ``MAX_CENTS`` (never a dollar string)."""
Price = Annotated[int, Field(gt=0, le=MAX_CENTS)]
"""An asking price: integer cents above 0, at most ``MAX_CENTS``."""
Title = Annotated[str, Field(min_length=1, max_length=MAX_TITLE)]
"""What a line is about, as the person wrote it."""

LEAST_ABOVE_ASK = "least_above_ask"
"""The error type of a sell line whose least is above its ask."""
NOTHING = "nothing_to_trade"
"""The error type of a mandate that names nothing to sell or to buy."""


class SellLine(Frozen):
    """An item to sell: its asking price and the least the person accepts (at most the ask)."""

    title: Title
    ask: Price
    least: Cents

    @model_validator(mode="after")
    def _least_within_ask(self) -> Self:
        if self.least > self.ask:
            raise PydanticCustomError(LEAST_ABOVE_ASK, "least ({least}) is above ask ({ask})",
                                      {"least": self.least, "ask": self.ask})
        return self


class WantLine(Frozen):
    """Something to buy, and the most the person would pay."""

    title: Title
    max_price: Cents


class Mandate(Frozen):
    """What the person's agent may do: the exchange enforces these limits."""

    # the docstring above is the interviewer tool's description; a bad field raises pydantic.ValidationError
    # whose error type names the rule (least_above_ask, nothing_to_trade, or pydantic's own such as too_long)

    sells: list[SellLine] = Field(default_factory=list, max_length=MAX_LINES)
    wants: list[WantLine] = Field(default_factory=list, max_length=MAX_LINES)
    style: Style = DEFAULT_STYLE
    autonomy: Autonomy = DEFAULT_AUTONOMY

    @model_validator(mode="after")
    def _something(self) -> Self:
        if not self.sells and not self.wants:
            raise PydanticCustomError(NOTHING, "the mandate names nothing to sell or to buy")
        return self


__all__ = [
    "AUTONOMY", "AUTONOMY_LABELS", "DEFAULT_AUTONOMY", "DEFAULT_BUDGET", "DEFAULT_STYLE", "LEAST_ABOVE_ASK",
    "MAX_LINES", "MAX_TITLE", "NOTHING", "STYLES", "Autonomy", "Cents", "Mandate", "Price", "SellLine", "Style",
    "Title", "WantLine",
]
