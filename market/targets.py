"""Published figures (a targets file) and how a simulated figure compares with one (pure; no run is read here).

The moments are computed from a run by :mod:`analysis.moments`.

One definition of each moment serves the calibration (:mod:`market.calibrate`, which fits
profiles to them), the run's terminal output and the report (which show each published
figure beside the simulated one). A scenario names its targets file under ``targets:``;
the run copies it into the run folder as ``targets.yaml``.

:func:`compare` says whether a simulated figure is inside the published uncertainty:
with a published standard error ``se``, ``|published - simulated| / sqrt(se^2 + se_sim^2) < 1.96``
(``se_sim`` the simulated figure's standard error: over held-out seeds or replications, or 0 when the run
gives the figure without an interval); otherwise (counts published without an error) within the declared
``tolerance``, whose reason the targets file states. The calibration's "reached" is this same rule.

The published standard error is data derived from the published estimate and its p-value, never typed in:
for a two-sided test against a normal reference, ``SE = |estimate| / z(1 - p/2)`` (:func:`se_from_p`), e.g.
+$2.68 at p = 0.030 gives SE = 268 / 2.170 = 123.5 cents. A moment given both ``p_value`` and ``se`` must
agree with that formula (to 5%, p-values being quoted rounded).

The analysis stores the comparison as ``published.json`` beside
the report, where the terminal reads it (``market`` never imports the analysis).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from statistics import NormalDist
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from market.domain import Frozen
from market.files import write_whole
from market.money import format_money
from market.scenario import Ident, ScenarioError, _describe, read_mapping

TARGETS_FILE = "targets.yaml"
"""The targets file's name in a run folder (a copy of the one the scenario names)."""
PUBLISHED_FILE = "published.json"
"""Published against simulated, as the report computed it (beside ``report.html``)."""
Z_CRITICAL = 1.96
SE_AGREEMENT = 0.05
"""How far a given ``se`` may be from the one its ``p_value`` implies (relative): p-values are quoted rounded."""


def se_from_p(estimate: float, p_value: float) -> float:
    """The standard error a two-sided normal test implies: ``|estimate| / z(1 - p/2)``."""
    if not 0 < p_value < 1:
        raise ValueError(f"p_value must be between 0 and 1, got {p_value}")
    return abs(estimate) / NormalDist().inv_cdf(1 - p_value / 2)


Statistic = Literal[
    "deals", "listings", "volume_cents", "deals_total", "listings_total",
    "seller_premium_cents", "buyer_savings_cents", "extra_deals_per_person",
    "fairness_mean", "fairness_gap", "style_effect", "same_item_premium_cents", "median_price_cents",
    "items_sold_twice",
]
SIMULATED = {
    "deals": "deals closed in the market",
    "listings": "items listed in the market",
    "volume_cents": "money paid in the market's deals (cents)",
    "deals_total": "deals closed over all markets",
    "listings_total": "items listed over all markets",
    "seller_premium_cents": "same item sold by the first compared tier minus the second, paired within a run (cents)",
    "buyer_savings_cents": "same item bought by the first compared tier minus the second, savings (cents)",
    "extra_deals_per_person": "deals per person as the first compared tier minus as the second, mixed markets",
    "same_item_premium_cents": "the seller-tier coefficient of price on seller-tier and buyer-tier indicators with "
                               "item fixed effects (the same item sold in different markets), first tier minus "
                               "second (cents)",
    "median_price_cents": "the median price of all deals over all markets (cents)",
    "items_sold_twice": "items sold in at least two markets",
}
_FAIRNESS = ("fairness ratings come from people (or models) asked after the week; the offline week does not "
             "simulate them (its rating rule is off by default), so there is nothing to compare or fit")
NOT_SIMULATED = {
    "fairness_mean": _FAIRNESS,
    "fairness_gap": _FAIRNESS,
    "style_effect": "the offline profiles have no negotiation-style instructions to vary",
}


class Moment(Frozen):
    """One published figure the simulated week should reproduce."""

    name: Annotated[str, Field(max_length=100, pattern=r"^[a-z0-9_]+$")]
    statistic: Statistic
    market: Ident | None = Field(None, description="the market, for deals, listings and volume_cents")
    compare: tuple[Ident, Ident] = Field(("frontier", "small"), description="tiers compared: first minus second")
    target: Annotated[float, Field(allow_inf_nan=False)]
    tolerance: Annotated[float, Field(gt=0, allow_inf_nan=False, description=(
        "a miss of this size is one unit of distance; for a figure without a published error it also decides "
        "'inside' (state why in tolerance_reason). Defaults to the published se"))] | None = None
    tolerance_reason: Annotated[str, Field(max_length=2_000)] = ""
    weight: Annotated[float, Field(ge=0, le=1_000_000)] = 1.0
    fit: bool = Field(True, description="false: reported beside the fit, not fitted")
    source: Annotated[str, Field(min_length=1, max_length=2_000)]
    certainty: Literal["stated exactly", "stated approximately", "read from a figure", "qualitative"]
    note: Annotated[str, Field(max_length=10_000)] = ""
    p_value: Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False, description=(
        "the published two-sided p-value; the standard error is derived from it: |target| / z(1 - p/2)"))] | None = None
    se: Annotated[float, Field(gt=0, allow_inf_nan=False, description=(
        "the published standard error (derived from p_value when absent; checked against it when both are "
        "given): the figure is then compared by z instead of the tolerance"))] | None = None

    @model_validator(mode="after")
    def _derive_se(self) -> Self:
        if self.p_value is not None:
            if self.target == 0:
                raise ValueError(f"{self.name}: a p-value gives no standard error for an estimate of 0")
            derived = se_from_p(self.target, self.p_value)
            if self.se is None:
                object.__setattr__(self, "se", derived)  # frozen model: set once, while validating
            elif abs(self.se - derived) > SE_AGREEMENT * derived:
                raise ValueError(f"{self.name}: se {self.se:g} disagrees with p_value {self.p_value:g}, which "
                                 f"gives |target| / z(1 - p/2) = {derived:.4g}; give one of them")
        if self.tolerance is None:
            if self.se is None:
                raise ValueError(f"{self.name}: give the published p_value (or se), or a tolerance with its "
                                 "tolerance_reason")
            object.__setattr__(self, "tolerance", self.se)  # one unit of distance = one published SE
        return self

    @property
    def scale(self) -> float:
        """One unit of distance: the tolerance (the published SE when the file gives no tolerance)."""
        return self.tolerance if self.tolerance is not None else self.se or math.inf  # set by the validator

    @model_validator(mode="after")
    def _simulable(self) -> Self:
        if self.statistic in ("deals", "listings", "volume_cents") and not self.market:
            raise ValueError(f"{self.name}: {self.statistic} is counted in one market; name it (market: A)")
        if self.fit and self.statistic in NOT_SIMULATED:
            raise ValueError(f"{self.name}: cannot be fitted ({NOT_SIMULATED[self.statistic]}); set fit: false")
        return self


class Targets(Frozen):
    """A targets file: the figures, their sources, and the declared distance."""

    name: Annotated[str, Field(max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")]
    description: Annotated[str, Field(max_length=10_000)] = ""
    source: Annotated[str, Field(min_length=1, max_length=2_000)]
    distance: Literal["weighted squared z"] = "weighted squared z"
    moments: Annotated[list[Moment], Field(min_length=1, max_length=100)]

    @model_validator(mode="after")
    def _some_fitted(self) -> Self:
        names = [m.name for m in self.moments]
        if len(set(names)) != len(names):
            raise ValueError(f"moment names must be unique, got {names}")
        if not any(m.fit and m.weight > 0 for m in self.moments):
            raise ValueError("no moment is fitted (every one has fit: false or weight 0)")
        return self


def read_targets(path: Path) -> Targets:
    """Read and validate a targets file; errors name the file and field."""
    data = read_mapping(path, "targets", "a mapping (name, source, moments)")
    try:
        return Targets.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError("\n".join(_describe(e, path.name) for e in exc.errors())) from None


Interval = Literal["point", "bootstrap", "regression", "replications"]


class PublishedRow(BaseModel):
    """One published figure beside the simulated one, and whether it is inside the published uncertainty."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    moment: str
    statistic: str
    unit: str  # "$" (shown in dollars; the values are cents), or what is counted
    published: float
    tolerance: float
    se: float | None = None  # the published standard error, when the targets file gives one
    simulated: float | None = None  # None: not simulated, or the run has no units for it
    low: float | None = None
    high: float | None = None
    interval: Interval = "point"
    runs: int = 1
    inside: bool | None = None  # None: not simulated
    rule: str = ""  # with a published SE, the z that decided "inside", e.g. "z = 0.42"
    not_simulated: bool = False  # fit: false, a figure the simulation does not produce
    why_not: str = ""  # why it is not simulated, or why the run gives no value
    source: str = ""

    def show(self, value: float | None, unit: bool = True) -> str:
        """A value of this moment as people read it: dollars, or a number with its unit."""
        if value is None or math.isnan(value):
            return "n/a"
        if self.unit == "$":
            return format_money(round(value))
        number = f"{value:,.0f}" if float(value).is_integer() or abs(value) >= 100 else f"{value:,.2f}"
        return f"{number} {self.unit}".strip() if unit else number

    def published_text(self) -> str:
        """The published figure and its uncertainty: ``186 ± 10 deals (tolerance)`` or ``$2.68 ± $0.50 (SE)``."""
        spread, kind = (self.se, "SE") if self.se is not None else (self.tolerance, "tolerance")
        if self.unit == "$":
            return f"{self.show(self.published)} ± {self.show(spread)} ({kind})"
        return f"{self.show(self.published, False)} ± {self.show(spread)} ({kind})"

    def interval_text(self) -> str:
        """The simulated value's 95% interval and where it comes from, or why there is none."""
        if self.inside is None:
            return ""
        if self.interval == "point" or self.low is None or self.high is None:
            return "none (one run: a point value)" if self.runs == 1 else "none (fewer than two runs)"
        where = {"bootstrap": "bootstrap over paired units",
                 "regression": "item fixed effects, cluster-robust"}.get(self.interval, f"t over {self.runs} runs")
        return f"{self.show(self.low, self.unit == '$')} to {self.show(self.high)} ({where})"

    def verdict(self) -> str:
        """``inside``, ``NOT reproduced (z = 3.10)``, ``not simulated`` or ``no value in this run``."""
        if self.inside is None:
            return "not simulated" if self.not_simulated else "no value in this run"
        return ("inside" if self.inside else "NOT reproduced") + (f" ({self.rule})" if self.rule else "")


class Published(BaseModel):
    """What the analysis leaves for the terminal: the targets' name and every row."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    targets: str
    rows: list[PublishedRow]

    def sentence(self) -> str:
        """What a reader must learn first: which published figures the week reproduces and which it does not."""
        simulated = [r for r in self.rows if r.inside is not None]
        missed = [r for r in simulated if not r.inside]
        out = [f"Against the published figures ({self.targets}): {len(simulated) - len(missed)} of "
               f"{len(simulated)} simulated figures are inside the published uncertainty."]
        if missed:
            out.append("NOT reproduced: " + "; ".join(
                f"{r.moment} (published {r.show(r.published)}, simulated {r.show(r.simulated)})" for r in missed)
                + ".")
        unvalued = [r for r in self.rows if r.inside is None and not r.not_simulated]
        for label, rows in (("Not simulated", [r for r in self.rows if r.not_simulated]),
                            ("No value in this run", unvalued)):
            if rows:
                out.append(f"{label}: {', '.join(r.moment for r in rows)}.")
        return " ".join(out)


UNITS = {"deals": "deals", "listings": "listings", "volume_cents": "$", "deals_total": "deals",
         "listings_total": "listings", "seller_premium_cents": "$", "buyer_savings_cents": "$",
         "extra_deals_per_person": "deals", "fairness_mean": "points (1-7)", "fairness_gap": "points (1-7)",
         "style_effect": "", "same_item_premium_cents": "$", "median_price_cents": "$", "items_sold_twice": "items"}


def compare(moment: Moment, simulated: float | None, low: float | None = None, high: float | None = None,
            interval_kind: Interval = "point", runs: int = 1, se_sim: float | None = None) -> PublishedRow:
    """``moment`` beside its simulated value (with the 95% interval, when the run gives one)."""
    base = {"moment": moment.name, "statistic": moment.statistic, "unit": UNITS[moment.statistic],
            "published": moment.target, "tolerance": moment.scale, "se": moment.se, "source": moment.source}
    if moment.statistic in NOT_SIMULATED or not moment.fit:
        return PublishedRow(**base, not_simulated=True,
                            why_not=NOT_SIMULATED.get(moment.statistic, "fit: false in the targets file"))
    if simulated is None or math.isnan(simulated):
        return PublishedRow(**base, why_not="the run has no units for it (e.g. no such market or no paired items)")
    gap = abs(moment.target - simulated)
    if moment.se is not None:
        z = gap / math.sqrt(moment.se ** 2 + (se_sim or 0.0) ** 2)
        inside, rule = z < Z_CRITICAL, f"z = {z:.2f}" + ("" if se_sim else " (simulated taken as exact)")
    else:
        inside, rule = gap <= moment.scale, ""
    return PublishedRow(**base, simulated=simulated, low=low, high=high, interval=interval_kind, runs=runs,
                        inside=inside, rule=rule)


def write_published(run_dir: Path, published: Published) -> Path:
    """Store the comparison for the terminal (``published.json``)."""
    path = run_dir / PUBLISHED_FILE
    write_whole(path, published.model_dump_json(indent=2) + "\n")
    return path


def read_published(run_dir: Path) -> Published | None:
    """The stored comparison (None when the run names no targets, or its report was not written)."""
    path = run_dir / PUBLISHED_FILE
    try:
        return Published.model_validate_json(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (ValidationError, OSError, json.JSONDecodeError):
        return None
