"""One schema per concept: the mandate, its styles and autonomy modes, a newcomer's tier and budget, and the
stored fairness rating are declared once and every part that describes them uses that declaration."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from agents.llm.interviewer import mandate_tool
from agents.llm.survey import ASKED_COMMENT, tool_schema
from agents.messages import _TEMPLATES
from market.mandate import (
    AUTONOMY,
    AUTONOMY_LABELS,
    DEFAULT_BUDGET,
    LEAST_ABOVE_ASK,
    MAX_LINES,
    NOTHING,
    STYLES,
    Mandate,
    SellLine,
    WantLine,
)
from market.money import MAX_CENTS
from market.ratings import MAX_COMMENT, FairnessRating, read_ratings
from market.scenario import (
    ScenarioError,
    build_participants,
    load_scenario,
    newcomer_budget,
    newcomer_tier,
    validate_scenario,
)
from slackbot.modals import join_view, parse_join
from slackbot.survey import FORM_COMMENT, store_answers
from tests.conftest import SCENARIOS
from tests.slackbot.live import join_values


def test_the_interviewers_tool_and_the_join_form_read_the_one_mandate() -> None:
    assert mandate_tool()["input_schema"] == Mandate.model_json_schema()
    form = parse_join(join_values("Desk lamp, $18, $12\nChair, 30, 0", "Monitor riser, $20", "approve"))
    assert form == Mandate(sells=[SellLine(title="Desk lamp", ask=1800, least=1200),
                                  SellLine(title="Chair", ask=3000, least=0)],
                           wants=[WantLine(title="Monitor riser", max_price=2000)], style="direct", autonomy="approve")
    view = join_view("A", form)
    fields = {b["block_id"]: b["element"] for b in view["blocks"]}
    assert [o["value"] for o in fields["style"]["options"]] == list(STYLES)
    assert [(o["value"], o["text"]["text"]) for o in fields["autonomy"]["options"]] == list(AUTONOMY_LABELS.items())
    assert tuple(AUTONOMY_LABELS) == AUTONOMY
    # the same rules refuse the same things, in the form and in the schema
    assert "least you accept" in parse_join(join_values("Lamp, $5, $6", "", "manual"))["sells"]  # type: ignore[index]
    with pytest.raises(ValidationError) as refused:
        Mandate.model_validate({"sells": [{"title": "Lamp", "ask": 500, "least": 600}]})
    assert refused.value.errors()[0]["type"] == LEAST_ABOVE_ASK
    with pytest.raises(ValidationError) as empty:
        Mandate.model_validate({"style": "terse"})
    assert empty.value.errors()[0]["type"] == NOTHING
    too_many = "\n".join(f"Thing {n}, $2, $1" for n in range(MAX_LINES + 1))
    assert parse_join(join_values(too_many, "", "manual")) == {"sells": f"At most {MAX_LINES} items"}
    with pytest.raises(ValidationError):
        Mandate(sells=[SellLine(title=f"T{n}", ask=2, least=1) for n in range(MAX_LINES + 1)])


def test_amounts_are_bounded_integer_cents() -> None:
    assert SellLine(title="Lamp", ask=MAX_CENTS, least=MAX_CENTS).least == MAX_CENTS
    for bad in ({"ask": MAX_CENTS + 1, "least": 0}, {"ask": 0, "least": 0}, {"ask": 100, "least": -1}):
        with pytest.raises(ValidationError):
            SellLine.model_validate({"title": "Lamp", **bad})
    with pytest.raises(ValidationError):
        WantLine.model_validate({"title": "Mug", "max_price": MAX_CENTS + 1})
    with pytest.raises(ValidationError):  # a title is 1 to 100 characters
        WantLine.model_validate({"title": "", "max_price": 100})


def test_scenario_people_take_the_mandates_styles_and_budget(tmp_path: Path) -> None:
    scenario, catalog = load_scenario(SCENARIOS / "smoke.yaml")
    drawn = {p.style for p in build_participants(scenario, catalog)}
    assert drawn <= set(STYLES)
    assert set(_TEMPLATES["offer"]) == set(STYLES)  # every style has its offline messages
    data = yaml.safe_load((SCENARIOS / "deal.yaml").read_text())
    data["participants"] = {"people": [
        {"id": "ann", "name": "Ann", "budget": 5000, "items": [], "wants": [], "style": "sarcastic"},
        {"id": "bob", "name": "Bob", "budget": 5000}]}
    with pytest.raises(ScenarioError, match=r"participants\.people\[0\]\.style: .*'friendly'"):
        validate_scenario(data, "deal.yaml")
    data["participants"]["people"][0]["style"] = "terse"
    listed = validate_scenario(data, "deal.yaml")
    assert newcomer_budget(listed) == DEFAULT_BUDGET == 10_000
    generated = validate_scenario({**data, "participants": {"generate": {"count": 4, "budget": "$250"}}})
    assert newcomer_budget(generated) == 25_000


def test_a_newcomers_tier_is_the_scenarios_seeded_draw() -> None:
    scenario, _ = load_scenario(SCENARIOS / "deal.yaml")
    mixed = next(m for m in scenario.markets if len(m.tiers) > 1)
    ids = [f"s-u{n}" for n in range(2000)]
    tiers = [newcomer_tier(scenario, mixed, pid) for pid in ids]
    assert tiers == [newcomer_tier(scenario, mixed, pid) for pid in ids]  # a restarted host draws the same
    rng = random.Random(f"{scenario.seed}:{mixed.name}:s-u7:tier")  # the draw Slack weeks have always made
    assert tiers[7] == rng.choices(list(mixed.tiers), weights=list(mixed.tiers.values()))[0]
    counts = Counter(tiers)
    for tier, share in mixed.tiers.items():
        assert abs(counts[tier] / len(ids) - share) < 0.05
    fixed = mixed.model_copy(update={"assign": {"s-u7": "small"}})
    assert newcomer_tier(scenario, fixed, "s-u7") == "small"


def test_one_stored_rating_for_every_writer(tmp_path: Path) -> None:
    assert FORM_COMMENT <= MAX_COMMENT and ASKED_COMMENT <= MAX_COMMENT
    assert tool_schema()["properties"]["ratings"]["items"]["properties"]["comment"]["maxLength"] == ASKED_COMMENT
    long = "é" * FORM_COMMENT
    assert store_answers(tmp_path, "A", "s-u1", {"D1": 7, "D2": 1}, long, allowed={"D1", "D2"}) == 2
    assert store_answers(tmp_path, "A", "s-u1", {"D1": 3}, "", allowed={"D1"}) == 0  # rated once
    table = read_ratings(tmp_path, "run")
    assert table.select("deal_id", "rating", "source").rows() == [("D1", 7, "person"), ("D2", 1, "person")]
    assert table["comment"].to_list() == [long, long]
    first = (tmp_path / "fairness.jsonl").read_text(encoding="utf-8").splitlines()[0]
    assert FairnessRating.model_validate_json(first).line() == first + "\n"
    with pytest.raises(ValidationError):
        FairnessRating(market="A", deal_id="D1", participant_id="p", rating=8, source="person")
    with pytest.raises(ValidationError):
        FairnessRating(market="A", deal_id="D1", participant_id="p", rating=4, source="person",
                       comment="x" * (MAX_COMMENT + 1))
