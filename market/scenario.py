"""Scenario files: the YAML schema, the loader, and participant generation.

A scenario names the seed, the simulated week, the markets and how tiers
are assigned in each, the participants (generated from a catalog or listed)
and each tier's agent settings. Errors name the file, the field path and what
was expected; unknown keys are errors.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import AfterValidator, Field, StrictInt, ValidationError, field_validator, model_validator

from market.clock import DAY
from market.domain import Condition, Frozen, Item, Participant, Want
from market.events import Rules
from market.mandate import DEFAULT_BUDGET, DEFAULT_STYLE, STYLES, Style
from market.money import MAX_CENTS, Money, MoneyError, format_money, parse_money

CONDITION_FACTOR: dict[Condition, tuple[int, int]] = {
    # value multiplier as a fraction (numerator, denominator): exact integer cents
    Condition.NEW: (13, 10),
    Condition.LIKE_NEW: (115, 100),
    Condition.GOOD: (1, 1),
    Condition.FAIR: (3, 4),
    Condition.BROKEN: (2, 5),
}
QUIRKS = (
    "uses emoji", "mentions their cat", "loves a bargain", "hates haggling",
    "signs off with a pun", "always says please", "asks about pickup", "writes in lowercase",
)


class ScenarioError(ValueError):
    """A scenario that cannot be used; the message names file and field."""


Seed = Annotated[int, Field(ge=0, le=2**63 - 1)]
"""A run's seed: every draw of the run follows from it (and the keys of what is drawn)."""

Kind = Annotated[str, Field(min_length=1, max_length=100)]
"""A catalog kind: the name that ties items, wants and listings together."""
Name = Annotated[str, Field(max_length=200)]
"""A short text: a person's name, a title, a category, a style, a quirk."""

Ident = Annotated[str, Field(min_length=1, max_length=100)]
"""A name the scenario refers to: a tier, a profile, a backend, a participant id."""

FieldPathText = Annotated[str, Field(min_length=1, max_length=300)]
"""A scenario field path as written (``markets[*].tiers.small.share``)."""

MAX_MARKETS = 100
MAX_TIERS = 20
MAX_PARTICIPANTS = 1_000_000


class Range(Frozen):
    """A closed interval of finite numbers (at most a million either way)."""

    min: Annotated[float, Field(allow_inf_nan=False, ge=-1_000_000, le=1_000_000)]
    max: Annotated[float, Field(allow_inf_nan=False, ge=-1_000_000, le=1_000_000)]

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.min > self.max:
            raise ValueError(f"min must not exceed max, got min={self.min} max={self.max}")
        return self


class IntRange(Frozen):
    """A closed interval of counts (at most 10,000)."""

    min: Annotated[int, Field(ge=0, le=10_000)]
    max: Annotated[int, Field(ge=0, le=10_000)]

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.min > self.max:
            raise ValueError(f"min must not exceed max, got min={self.min} max={self.max}")
        return self


class WorkingHours(Frozen):
    """The hours of each simulated day when traders act: from ``start`` up to (not including) ``end``, 0-24."""

    start: Annotated[int, Field(ge=0, le=23)] = 9
    end: Annotated[int, Field(ge=1, le=24)] = 18

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.start >= self.end:
            raise ValueError(f"start must be before end, got {self.start}-{self.end}")
        return self


class Timing(Frozen):
    """When traders act: their own cadence, how fast they react, and how the week fills up.

    ``arrival_days`` and ``item_arrival_days`` are counted in working days: 0 is the first day's opening,
    1.5 the middle of the second day's working hours. Both are off (None) by default: every agent
    checks in on the first morning with every item to sell. A person or item due after the run's last
    day never comes (a shorter ``--days`` run simply ends first).
    """

    wake_every_minutes: Range = Range(min=45, max=150)
    reaction_minutes: Range = Range(min=5, max=40)
    tick_minutes: Annotated[int, Field(ge=1, le=60)] = 5
    arrival_days: Range | None = Field(
        None, description="working day each person's agent first checks in, drawn per person from the seed "
        "(the same in every market); none: all on the first morning")
    item_arrival_days: Range | None = Field(
        None, description="working days after its person's arrival each item is put up for sale, drawn per "
        "item from the seed (its agent sees it from then on); none: every item from the start")

    @field_validator("tick_minutes")
    @classmethod
    def _divides_hour(cls, value: int) -> int:
        if 60 % value:
            raise ValueError(f"tick must divide an hour evenly (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60), got {value}")
        return value

    @field_validator("wake_every_minutes", "reaction_minutes")
    @classmethod
    def _positive(cls, value: Range) -> Range:
        if value.min <= 0:
            raise ValueError(f"minutes must be positive, got {value.min}")
        return value

    @field_validator("arrival_days", "item_arrival_days")
    @classmethod
    def _from_opening(cls, value: Range | None) -> Range | None:
        if value is not None and value.min < 0:
            raise ValueError(f"days are counted from the opening and cannot be negative, got min={value.min:g}")
        if value is not None and value.max > 366:
            raise ValueError(f"at most a year of days (366), got max={value.max:g}")
        return value


class TierSettings(Frozen):
    """How one tier's agents are run."""

    backend: Ident = "offline"
    profile: Ident | None = Field(None, description="offline profile name; defaults to the tier name")
    model: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    base_url: Annotated[str, Field(min_length=1, max_length=2000)] | None = None
    # model backends only (anthropic, openai, replay); the offline backend ignores these
    rpm: Annotated[int, Field(gt=0, le=1_000_000)] | None = Field(None, description="requests per minute to this model")
    tpm: Annotated[int, Field(gt=0, le=10**10)] | None = Field(None, description="input+output tokens per minute")
    max_tokens: Annotated[int, Field(gt=0, le=64_000)] = Field(1024, description="most output tokens per call")
    timeout: Annotated[float, Field(gt=0, le=3600)] = Field(60.0, description="seconds before a call is abandoned")
    max_retries: Annotated[int, Field(ge=0, le=20)] = Field(4, description="retries on 429/529/5xx/timeouts")
    history_turns: Annotated[int, Field(ge=1, le=100)] = Field(
        12, description="past turns kept per trader; past this many, the oldest are summarised down to half at once"
    )
    options: Annotated[dict[Ident, Any], Field(max_length=100)] = Field(default_factory=dict)


def _ordered_pair(value: tuple[float, float]) -> tuple[float, float]:
    if value[0] > value[1]:
        raise ValueError(f"a range [low, high] needs low <= high, got {list(value)}")
    return value


Pair = Annotated[tuple[Annotated[float, Field(gt=0, le=10)], Annotated[float, Field(gt=0, le=10)]],
                 AfterValidator(_ordered_pair)]


class ProfileSpec(Frozen):
    """A named offline profile declared in the scenario: a built-in (or declared) ``base`` with changes.

    Every setting left out (or null) is the base's. ``threads_per_turn``/``bids_per_turn`` take ``all``
    for no limit, ``reprice_after_hours`` takes ``never``, ``ask_ceiling`` takes ``any``. Like the built-in
    profiles, these are modelling assumptions, not measurements of any model.
    """

    base: Annotated[Ident, Field(description="built-in profile (frontier, small) or one declared here")]
    description: Annotated[str, Field(max_length=10_000)] = ""
    value_noise: Annotated[float, Field(ge=0, le=1, description="relative error of its value estimates")] | None = None
    anchor: Pair | None = Field(None, description="ask as a multiple of estimated value, [low, high]")
    opening_bid: Pair | None = Field(None, description="first bid as a fraction of what it would pay, [low, high]")
    value_cap: Annotated[float, Field(gt=0, le=10)] | None = Field(
        None, description="never bids above estimated value times this (within the mandate)")
    ask_ceiling: Annotated[float, Field(ge=1, le=100)] | Literal["any"] | None = Field(
        None, description="bids on a listing asking at most this multiple of what it would pay (any: no ceiling)")
    concession: Annotated[float, Field(ge=0, le=1)] | None = Field(None, description="share of the gap given per round")
    attention: Annotated[int, Field(ge=1, le=1000)] | None = Field(None, description="listings it looks at per want")
    counters: bool | None = Field(None, description="counters an offer it does not take (false: declines it)")
    max_rounds: Annotated[int, Field(ge=1, le=100)] | None = Field(None, description="rounds before it settles")
    listings_per_turn: Annotated[int, Field(ge=1, le=1000)] | None = Field(None, description="items listed per turn")
    accept_within: Annotated[float, Field(ge=0, le=1)] | None = Field(
        None, description="takes an offer within its limits when the gap to its own position is at most this share "
        "of the higher of the two (1: the first offer within its limits)")
    diligence: Annotated[float, Field(ge=0, le=1)] | None = Field(
        None, description="chance it follows up each opportunity on a turn")
    threads_per_turn: Annotated[int, Field(ge=1, le=1000)] | Literal["all"] | None = Field(
        None, description="offers it answers per turn (all: every one)")
    bids_per_turn: Annotated[int, Field(ge=1, le=1000)] | Literal["all"] | None = Field(
        None, description="new bids per turn (all: one per open want)")
    persistent: bool | None = Field(None, description="tries again for a want after a failed bid")
    reprice_after_hours: Annotated[float, Field(gt=0, le=10_000)] | Literal["never"] | None = Field(
        None, description="lowers a stale ask after this many hours (never: keeps it)")

    def changes(self) -> dict[str, Any]:
        """The settings this profile changes from its base (``all``/``never``/``any`` as None: no limit)."""
        skip = {"base", "description"}
        return {k: (None if v in ("all", "never", "any") else v) for k, v in self if k not in skip and v is not None}


def _share(value: float) -> float:
    if not 0 <= value <= 1:
        raise ValueError(f"share must be between 0 and 1, got {value:g}")
    return value


Share = Annotated[float, AfterValidator(_share)]


class MarketSpec(Frozen):
    """One market: its name and how its participants' tiers are assigned."""

    name: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")]
    tiers: Annotated[dict[Ident, Share], Field(max_length=MAX_TIERS)] = Field(
        description="share of participants per tier, drawn from the seed")
    assign: Annotated[dict[Ident, Ident], Field(max_length=MAX_PARTICIPANTS)] = Field(
        default_factory=dict, description="participant id -> fixed tier")

    @field_validator("tiers")
    @classmethod
    def _shares(cls, tiers: dict[str, float]) -> dict[str, float]:
        if not tiers:
            raise ValueError("name at least one tier with its share")
        total = sum(tiers.values())
        if abs(total - 1) > 1e-9:
            raise ValueError(f"shares must add up to 1, got {total:g}")
        return tiers


class ItemSpec(Frozen):
    """An item a hand-written person sells: a catalog kind in a condition, and the least they accept.

    The mandate's sell line (``market.mandate.SellLine``) as a simulation writes it: the item's value comes from
    the catalog and its agent picks the ask, so there is no ask here; no ``reserve`` means no least.
    """

    kind: Kind
    condition: Condition = Condition.GOOD
    reserve: Money | None = Field(None, description="the least accepted, in the mandate's bounds (0 to $1,000,000)")


class WantSpec(Frozen):
    """Something a hand-written person wants: a catalog kind and the most they would pay (the mandate's want
    line, ``market.mandate.WantLine``, by kind rather than by title)."""

    kind: Kind
    max_price: Money


class PersonSpec(Frozen):
    """A participant written out by hand.

    What they hand their agent is a mandate (``market.mandate``): the same bounds on money and the same styles.
    Beyond it a simulated person has an id, a budget and quirks, and always trades autonomously. Money may be
    written as dollar strings (``"$12.50"``) here; the file format is the scenario's.
    """

    id: Annotated[str, Field(min_length=1, max_length=100)]
    name: Name
    budget: Money
    items: Annotated[list[ItemSpec], Field(max_length=1000)] = Field(default_factory=list)
    wants: Annotated[list[WantSpec], Field(max_length=1000)] = Field(default_factory=list)
    style: Style = DEFAULT_STYLE
    quirks: Annotated[list[Name], Field(max_length=20)] = Field(default_factory=list)


class Generate(Frozen):
    """Draw participants from the catalog."""

    count: Annotated[int, Field(ge=2, le=1_000_000)]
    budget: Money = DEFAULT_BUDGET
    items_per_person: IntRange = IntRange(min=6, max=9)
    wants_per_person: IntRange = IntRange(min=3, max=6)
    reserve_ratio: Range = Range(min=0.4, max=0.85)
    max_pay_ratio: Range = Range(min=0.8, max=1.6)
    conditions: dict[Condition, float] = Field(
        default_factory=lambda: {
            Condition.NEW: 0.1, Condition.LIKE_NEW: 0.25, Condition.GOOD: 0.4,
            Condition.FAIR: 0.2, Condition.BROKEN: 0.05,
        }
    )

    @field_validator("conditions")
    @classmethod
    def _weights(cls, weights: dict[Condition, float]) -> dict[Condition, float]:
        if not weights or any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise ValueError("weights must be non-negative and not all zero")
        return weights


class Participants(Frozen):
    """Who trades: people drawn from the catalog (``generate``), people written out (``people``), or both."""

    generate: Generate | None = None
    people: Annotated[list[PersonSpec], Field(max_length=MAX_PARTICIPANTS)] = Field(default_factory=list)

    @model_validator(mode="after")
    def _some(self) -> Self:
        if self.generate is None and not self.people:
            raise ValueError("give `generate:` settings or a list of `people:`")
        return self


class SlackSettings(Frozen):
    """How the Slack bot shows and hosts this scenario's markets."""

    admins: Annotated[list[Annotated[str, Field(max_length=40, pattern=r"^[UW][A-Z0-9]+$")]],
                      Field(max_length=1000)] = Field(
        default_factory=list, description="Slack user ids allowed to run /deal admin"
    )
    show_tiers: bool = Field(False, description="show each agent's tier next to its name")
    channel_prefix: Annotated[str, Field(pattern=r"^[a-z0-9_-]{0,40}$")] = "deal-"
    join_market: Ident | None = Field(None, description="market people join from Slack (default: the first)")
    interviewer: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        None, description="model (Anthropic Messages API, priced in agents/llm/pricing.yaml) that interviews "
        "people who /deal join and writes their agent's instructions; none: the join form")


class FailureLimits(Frozen):
    """The circuit breaker: when a tier's failed turns pass a share, the run stops cleanly (resumable).

    Counted per tier over its last ``window`` turns (a deterministic count, not wall time):
    the run stops after the batch in which more than ``max_share`` of that window failed.
    A failed turn is an ``agent_failed`` event (a model's 400, an unrepairable tool call,
    a policy's exception, ...). Not part of the market's rules: changing it in a run
    folder's scenario.yaml before ``--resume`` lets a stopped run go on.
    """

    max_share: Annotated[float, Field(gt=0, le=1)] = Field(
        0.2, description="stop when more than this share of a tier's last `window` turns failed (1: never)"
    )
    window: Annotated[int, Field(ge=1, le=100_000)] = Field(50, description="turns per tier the share is taken over")


class FreeParameters(Frozen):
    """The free parameters ``python -m market.calibrate`` fits: scenario field paths and their bounds.

    ``parameters: {profiles.deal_small.diligence: [0.2, 0.9], ...}``; integers when both bounds are
    written as integers. A ``--param`` on the command line adds a parameter or replaces one declared here.
    ``fixed: {profiles.deal_small.counters: "why"}`` declares a setting held at its value, with the reason.
    """

    parameters: Annotated[dict[FieldPathText,
                               tuple[StrictInt, StrictInt] | tuple[Annotated[float, Field(allow_inf_nan=False)],
                                                                   Annotated[float, Field(allow_inf_nan=False)]]],
                          Field(max_length=100)] = Field(default_factory=dict, description="field path -> [low, high]")
    fixed: Annotated[dict[FieldPathText, Annotated[str, Field(min_length=1, max_length=2_000)]],
                     Field(max_length=200)] = Field(default_factory=dict, description=(
        "field path -> why it is held at its value rather than fitted (e.g. profiles.deal_small.counters)"))

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        for path, (low, high) in self.parameters.items():
            if not low < high:
                raise ValueError(f"parameters.{path}: low must be below high, got [{low}, {high}]")
        for path in self.fixed:
            if path in self.parameters:
                raise ValueError(f"fixed.{path}: also under parameters; a setting is either fitted or fixed")
        return self


class Scenario(Frozen):
    """A whole scenario file."""

    name: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")]
    description: Annotated[str, Field(max_length=10_000)] = ""
    seed: Seed = 0
    streams: Literal[1, 2] = Field(
        1, description="the version of the keyed streams the run draws from (market.randomness): 1 the Mersenne "
        "Twister, as every ledger before version 2; 2 BLAKE2b in counter mode, which is cheaper to key per turn and "
        "draws other numbers (so another ledger). People, items, arrivals and tiers are drawn the same in both")
    days: Annotated[int, Field(ge=1, le=366)] = 5
    working_hours: WorkingHours = WorkingHours()
    timing: Timing = Timing()
    rules: Rules = Rules()
    failures: FailureLimits = FailureLimits()
    catalog: Annotated[str, Field(min_length=1, max_length=300)] = Field(
        "catalog.csv", description="catalog file, relative to the scenario file")
    targets: Annotated[str, Field(min_length=1, max_length=300)] | None = Field(
        None, description="published figures this week is compared with: a targets file relative to the scenario "
        "file (e.g. targets/project_deal.yaml); the terminal and the report show each beside the simulated one")
    participants: Participants
    profiles: Annotated[dict[Annotated[str, Field(max_length=100, pattern=r"^[A-Za-z0-9_-]+$")], ProfileSpec],
                        Field(max_length=100)] = Field(
        default_factory=dict, description="offline profiles declared here: name -> {base: small, attention: 4, ...}")
    tiers: Annotated[dict[Ident, TierSettings], Field(max_length=MAX_TIERS)]
    markets: Annotated[list[MarketSpec], Field(min_length=1, max_length=MAX_MARKETS)]
    compare: Annotated[list[Ident], Field(max_length=MAX_TIERS)] = Field(
        default_factory=list,
        description="tiers to compare, in order: [frontier, small] reports frontier minus small; three or more "
        "give every pair (first minus later). Empty: every pair in the order `tiers:` defines them",
    )
    slack: SlackSettings = SlackSettings()
    calibration: FreeParameters = Field(
        default_factory=lambda: FreeParameters(), description="free parameters for python -m market.calibrate")

    @model_validator(mode="after")
    def _profiles_acyclic(self) -> Self:
        for name in self.profiles:
            chain = [name]
            while chain[-1] in self.profiles:
                base = self.profiles[chain[-1]].base
                if base in chain:
                    raise ValueError(f"profiles.{name}: its bases go round in a circle "
                                     f"({' -> '.join([*chain, base])}); end the chain at a built-in profile")
                chain.append(base)
        return self

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        names = [m.name for m in self.markets]
        if len(set(names)) != len(names):
            raise ValueError(f"market names must be unique, got {names}")
        for i, market in enumerate(self.markets):
            for tier in [*market.tiers, *market.assign.values()]:
                if tier not in self.tiers:
                    raise ValueError(
                        f"markets[{i}]: tier {tier!r} is not defined under `tiers:` "
                        f"(defined: {', '.join(self.tiers) or 'none'})"
                    )
        for tier in self.compare:
            if tier not in self.tiers:
                raise ValueError(
                    f"compare: tier {tier!r} is not defined under `tiers:` (defined: {', '.join(self.tiers) or 'none'})"
                )
        if self.compare and (len(self.compare) < 2 or len(set(self.compare)) != len(self.compare)):
            raise ValueError(f"compare: name two or more different tiers, first the one measured, got {self.compare}")
        return self

    @property
    def duration(self) -> int:
        """Simulated seconds in the run."""
        return self.days * DAY

    def market(self, name: str) -> MarketSpec:
        """The market named ``name``; ``StopIteration`` when there is none."""
        return next(m for m in self.markets if m.name == name)


class CatalogEntry(Frozen):
    """One kind of item in the catalog: its title, category and reference value in cents."""

    kind: Kind
    title: Name
    category: Name
    value: Money


# --- loading -------------------------------------------------------------


MAX_YAML_BYTES = 64 * 1024 * 1024
"""The largest settings file read (a scenario listing every person inline is a few MB)."""
MAX_DIGITS = 4_000
"""The longest integer a settings file or ``--set`` may write. Python refuses to read one of over 4,300
digits, with an error that names no line; a shorter one reaches the schema, which names its field."""


class OverlongInteger(yaml.MarkedYAMLError):
    """An integer longer than ``MAX_DIGITS`` digits, refused where the YAML is read."""


class _BoundedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses an integer of more than ``MAX_DIGITS`` digits before converting it."""

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        """An integer scalar, or ``OverlongInteger`` naming where it is."""
        digits = sum(char.isdigit() for char in node.value)
        if digits > MAX_DIGITS:
            raise OverlongInteger(problem=f"an integer of {digits:,} digits (at most {MAX_DIGITS:,} are read)",
                                  problem_mark=node.start_mark)
        return super().construct_yaml_int(node)


_BoundedLoader.add_constructor("tag:yaml.org,2002:int", _BoundedLoader.construct_yaml_int)


def read_yaml(text: str) -> Any:
    """YAML ``text`` as data (the safe subset), refusing integers of over ``MAX_DIGITS`` digits."""
    return yaml.load(text, Loader=_BoundedLoader)  # a SafeLoader: builds no arbitrary objects


def read_mapping(path: Path, kind: str, expected: str, error: type[ValueError] = ScenarioError,
                 shown: str | None = None) -> dict[str, Any]:
    """Read a YAML file that must hold a mapping (a ``kind`` file, ``expected`` describing it); a missing or
    too large file, bad YAML or an overlong integer (with its line and column), a file that is not text or
    not a mapping raise ``error`` naming it (as ``shown``, by default its name)."""
    if not path.is_file():
        raise error(f"{path}: no such {kind} file")
    name = shown or path.name
    size = path.stat().st_size
    if size > MAX_YAML_BYTES:
        raise error(f"{name}: {size:,} bytes; a {kind} file is read whole, and at most {MAX_YAML_BYTES:,} bytes "
                    "are read")
    try:
        data = read_yaml(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = exc.problem if isinstance(exc, OverlongInteger) else f"not valid YAML ({exc.problem or exc})"
        raise error(f"{name}: {where}{problem}") from None
    except yaml.YAMLError as exc:
        raise error(f"{name}: not valid YAML ({exc})") from None
    except UnicodeDecodeError as exc:
        raise error(f"{name}: not a text file ({exc.reason})") from None
    if not isinstance(data, dict):
        raise error(f"{name}: expected {expected}, got {type(data).__name__}")
    return data


def load_scenario(path: Path | str, overrides: dict[str, Any] | None = None) -> tuple[Scenario, list[CatalogEntry]]:
    """Read, validate and resolve a scenario and its catalog; writes nothing."""
    path = Path(path)
    data = read_mapping(path, "scenario", "a mapping of settings")
    data.update(overrides or {})
    scenario = validate_scenario(data, path.name)
    catalog = load_catalog(path.parent / scenario.catalog, where=f"{path.name}: catalog")
    if scenario.targets is not None and not (path.parent / scenario.targets).is_file():
        raise ScenarioError(f"{path.name}: targets: no targets file at {path.parent / scenario.targets}")
    check_kinds(scenario, catalog, path.name)
    return scenario, catalog


def validate_scenario(data: dict[str, Any], source: str = "scenario") -> Scenario:
    """``data`` (a parsed scenario file) as a ``Scenario``; ``ScenarioError`` naming ``source`` and each bad field."""
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError("\n".join(_describe(err, source) for err in exc.errors())) from None


def load_catalog(path: Path, where: str = "catalog") -> list[CatalogEntry]:
    """Read a catalog CSV (kind, title, category, value)."""
    if not path.is_file():
        raise ScenarioError(f"{where}: no catalog file at {path}")
    entries: list[CatalogEntry] = []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"kind", "title", "category", "value"} - set(reader.fieldnames or [])
        if missing:
            raise ScenarioError(f"{path.name}: missing columns {', '.join(sorted(missing))}")
        for line, row in enumerate(reader, start=2):
            try:
                entries.append(CatalogEntry(
                    kind=row["kind"], title=row["title"], category=row["category"],
                    value=parse_money(row["value"]),
                ))
            except (MoneyError, ValidationError) as exc:
                raise ScenarioError(f"{path.name}: line {line}: {exc}") from None
    if not entries:
        raise ScenarioError(f"{where}: the catalog {path.name} is empty; it needs at least one item kind")
    kinds = [e.kind for e in entries]
    if len(set(kinds)) != len(kinds):
        dupes = sorted({k for k in kinds if kinds.count(k) > 1})
        raise ScenarioError(f"{path.name}: duplicate kinds {', '.join(dupes)}")
    return entries


def check_kinds(scenario: Scenario, catalog: list[CatalogEntry], source: str) -> None:
    """``ScenarioError`` naming the field when a written-out person sells or wants a kind not in the catalog."""
    known = {e.kind for e in catalog}
    for i, person in enumerate(scenario.participants.people):
        for j, item in enumerate(person.items):
            if item.kind not in known:
                raise ScenarioError(f"{source}: participants.people[{i}].items[{j}].kind: unknown kind {item.kind!r}")
        for j, want in enumerate(person.wants):
            if want.kind not in known:
                raise ScenarioError(f"{source}: participants.people[{i}].wants[{j}].kind: unknown kind {want.kind!r}")


_SAYS_WHAT_IT_GOT = frozenset({"value_error", "int_from_float", "datetime_object_invalid"})
"""Pydantic error types whose message already says what was given: the scenario's own validators (their
ValueErrors quote the value) and the two of pydantic's own whose messages say "got ..."."""


def _describe(err: Any, source: str) -> str:
    loc = _path(err["loc"])
    msg = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown key (check the spelling; unknown keys are not ignored)"
    elif err["type"] == "missing":
        msg = "required field is missing"
    elif err["type"] not in _SAYS_WHAT_IT_GOT:
        msg = f"{msg}, got {quoted(err.get('input'))}"
    return f"{source}: {loc}: {msg}" if loc else f"{source}: {msg}"


ECHO = 80
"""The most characters of an input an error message quotes."""


def clipped(text: str) -> str:
    """``text`` as an error message quotes an input: whole when short, else its start and its length."""
    return text if len(text) <= ECHO else f"{text[:ECHO]}... ({len(text):,} characters)"


def quoted(value: object, show: Callable[[Any], str] = repr) -> str:
    """``show(value)`` clipped; a value holding an integer too long to write in decimal is said to."""
    try:
        return clipped(show(value))
    except ValueError:  # Python writes no int of over 4,300 digits in decimal
        return "a value holding an integer of over 4,300 digits"


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and (part.startswith("function-") or part in ("tagged-union",)):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


# --- resolving participants and tiers ---------------------------------------


def build_participants(scenario: Scenario, catalog: list[CatalogEntry]) -> list[Participant]:
    """The run's participants (without tiers): the same people in every market."""
    by_kind = {e.kind: e for e in catalog}
    people = [_from_spec(p, by_kind) for p in scenario.participants.people]
    if scenario.participants.generate is not None:
        people += _generate(scenario.participants.generate, catalog, scenario.seed, start=len(people))
    ids = [p.id for p in people]
    if len(set(ids)) != len(ids):
        raise ScenarioError("participants: participant ids must be unique")
    return people


def budget_warnings(scenario: Scenario, people: list[Participant]) -> list[str]:
    """Budgets that cannot buy even the cheapest item for sale (or are under $1.00), one line per budget field.

    A warning, not an error: a tiny budget can be a deliberate experiment, but ``budget: 100`` meaning $1.00
    (not $100) is the usual cause, and such a week closes nothing.
    """
    values = [(item.value, item.title) for person in people for item in person.items]
    if not values:
        return []
    cheapest, title = min(values)
    fields: list[tuple[str, int, int]] = [  # (field, budget, how many participants it is for)
        (f"participants.people[{i}].budget", spec.budget, 1) for i, spec in enumerate(scenario.participants.people)
    ]
    generate = scenario.participants.generate
    if generate is not None:
        fields.append(("participants.generate.budget", generate.budget, generate.count))
    lines = []
    for field, budget, count in fields:
        if budget >= cheapest and budget >= 100:
            continue
        who = "its participant" if count == 1 else f"its {count:,} participants"
        reason = (f"cannot buy any item for sale (the cheapest, {title}, is worth {format_money(cheapest)}), "
                  f"so {who} can close no deal as buyers" if budget < cheapest else "is under $1.00")
        lines.append(
            f"{field}: {format_money(budget)} {reason}. A bare number is cents (budget: {budget} is "
            f"{format_money(budget)}); write \"${budget}\" for dollars. The run goes ahead, since a tiny budget "
            f"can be a deliberate experiment."
        )
    return lines


def item_value(entry: CatalogEntry, condition: Condition) -> int:
    """The reference value of ``entry`` in ``condition`` (never above ``MAX_CENTS``)."""
    num, den = CONDITION_FACTOR[condition]
    return min(MAX_CENTS, entry.value * num // den)


def _item(item_id: str, entry: CatalogEntry, condition: Condition) -> Item:
    title = entry.title if condition is Condition.GOOD else f"{entry.title} ({condition.value})"
    return Item(
        id=item_id, kind=entry.kind, title=title, category=entry.category,
        condition=condition, value=item_value(entry, condition),
    )


def _from_spec(spec: PersonSpec, by_kind: dict[str, CatalogEntry]) -> Participant:
    items, reserves = [], {}
    for j, item_spec in enumerate(spec.items):
        item = _item(f"{spec.id}-i{j + 1}", by_kind[item_spec.kind], item_spec.condition)
        items.append(item)
        if item_spec.reserve is not None:
            reserves[item.id] = item_spec.reserve
    wants = tuple(
        Want(kind=w.kind, title=by_kind[w.kind].title, max_price=w.max_price) for w in spec.wants
    )
    return Participant(
        id=spec.id, name=spec.name, budget=spec.budget, items=tuple(items), wants=wants,
        reserves=reserves, style=spec.style, quirks=tuple(spec.quirks),
    )


_FIRST = ("Ada", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lea",
          "Max", "Nia", "Oli", "Pia", "Quin", "Rae", "Sam", "Tess", "Uma", "Vik", "Wren", "Xan",
          "Yui", "Zoe")
_LAST = ("Adler", "Brook", "Chen", "Diaz", "Evans", "Fox", "Garcia", "Hale", "Ito", "Jones",
         "Khan", "Lopez", "Moreau", "Novak", "Okafor", "Patel", "Quinn", "Rossi", "Silva", "Tan")


def _generate(spec: Generate, catalog: list[CatalogEntry], seed: int, start: int) -> list[Participant]:
    rng = random.Random(f"{seed}:participants")
    width = max(3, len(str(start + spec.count)))
    conditions = list(spec.conditions)
    weights = [spec.conditions[c] for c in conditions]
    ids = [f"p{start + n + 1:0{width}d}" for n in range(spec.count)]
    supply: list[list[Item]] = []
    for pid in ids:
        count = rng.randint(spec.items_per_person.min, spec.items_per_person.max)
        entries = rng.sample(catalog, min(count, len(catalog)))
        supply.append([
            _item(f"{pid}-i{j + 1}", e, rng.choices(conditions, weights)[0]) for j, e in enumerate(entries)
        ])
    offered = [item.kind for items in supply for item in items]
    by_kind = {e.kind: e for e in catalog}
    people = []
    for n, pid in enumerate(ids):
        own = {item.kind for item in supply[n]}
        count = rng.randint(spec.wants_per_person.min, spec.wants_per_person.max)
        kinds: list[str] = []
        for _ in range(count * 4):  # demand follows supply: draw from what others offer
            if len(kinds) == count or not offered:
                break
            kind = rng.choice(offered)
            if kind not in own and kind not in kinds:
                kinds.append(kind)
        wants = tuple(
            Want(kind=k, title=by_kind[k].title, max_price=_scaled(by_kind[k].value, rng, spec.max_pay_ratio))
            for k in kinds
        )
        reserves = {item.id: _scaled(item.value, rng, spec.reserve_ratio) for item in supply[n]}
        people.append(Participant(
            id=pid, name=f"{rng.choice(_FIRST)} {rng.choice(_LAST)}", budget=spec.budget,
            items=tuple(supply[n]), wants=wants, reserves=reserves, style=rng.choice(STYLES),
            quirks=tuple(rng.sample(QUIRKS, rng.randint(0, 2))),
        ))
    return people


def _scaled(cents: int, rng: random.Random, ratio: Range) -> int:
    """``cents`` times a ratio drawn from ``ratio``, rounded to whole cents (at least 1 cent, at most ``MAX_CENTS``)."""
    permille = rng.randint(round(ratio.min * 1000), round(ratio.max * 1000))
    return min(MAX_CENTS, max(1, cents * permille // 1000))


def assign_tiers(scenario: Scenario, market: MarketSpec, participant_ids: list[str]) -> dict[str, str]:
    """Each participant's tier in ``market``: fixed ones first, the rest by share.

    The people known at the start are dealt out exactly by the shares (a seeded shuffle); someone who joins
    later (a Slack newcomer) cannot be dealt from a known list and gets :func:`newcomer_tier`.
    """
    free = [pid for pid in participant_ids if pid not in market.assign]
    rng = random.Random(f"{scenario.seed}:{market.name}:tiers")
    rng.shuffle(free)
    shares = list(market.tiers.items())
    exact = [share * len(free) for _, share in shares]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(shares)), key=lambda i: (exact[i] - counts[i], -i), reverse=True)
    for i in by_remainder[: len(free) - sum(counts)]:
        counts[i] += 1
    tiers: dict[str, str] = dict(market.assign)
    position = 0
    for (tier, _), count in zip(shares, counts, strict=True):
        for pid in free[position : position + count]:
            tiers[pid] = tier
        position += count
    return {pid: tiers[pid] for pid in participant_ids}


def newcomer_tier(scenario: Scenario, market: MarketSpec, participant_id: str) -> str:
    """The tier of someone who joins ``market`` after the start: their fixed tier in ``assign``, else one draw
    by the market's shares, seeded by the run's seed, the market and their id (a restarted host draws the same)."""
    fixed = market.assign.get(participant_id)
    if fixed:
        return fixed
    rng = random.Random(f"{scenario.seed}:{market.name}:{participant_id}:tier")
    return rng.choices(list(market.tiers), weights=list(market.tiers.values()))[0]


def newcomer_budget(scenario: Scenario) -> int:
    """The budget of someone who joins after the start: the generated people's, else ``DEFAULT_BUDGET``."""
    generate = scenario.participants.generate
    return generate.budget if generate is not None else DEFAULT_BUDGET


def scenario_json_schema() -> dict[str, Any]:
    """The JSON schema of a scenario file (``scenarios/scenario.schema.json`` is this, for editors)."""
    return Scenario.model_json_schema()


# libyaml's emitter where PyYAML has it (as PyPI's wheels do): every run writes its scenario, and the
# pure-Python emitter took about a tenth of a quiet week's work. Both write YAML that loads as the same
# values; they may fold a long quoted string at different places.
_DUMPER = yaml.CSafeDumper if yaml.__with_libyaml__ else yaml.SafeDumper


def dump_scenario(scenario: Scenario) -> str:
    """The resolved scenario as YAML (money as integer cents)."""
    data = json.loads(scenario.model_dump_json())
    return yaml.dump(data, Dumper=_DUMPER, sort_keys=False, allow_unicode=True)





if __name__ == "__main__":
    print(json.dumps(scenario_json_schema(), indent=2))
