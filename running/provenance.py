"""What produced a run's numbers, in words: the first lines of every report and of the terminal summary.

Pure functions of the resolved scenario (backend, model or profile per tier,
seeds, participants, budgets, days, and which tiers are compared in which
direction), plus the small file contract by which the analysis hands the
terminal its headline effect (``headline.json`` beside ``report.html``):
``market`` never imports the analysis.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from market.files import write_whole
from market.money import format_money
from market.scenario import Scenario, ScenarioError, quoted, validate_scenario
from running.runfolder import RunFolder, RunFolderError

REPORT_FILE = "report.html"
HEADLINE_FILE = "headline.json"


class HeadlineEffect(BaseModel):
    """One headline tier effect as the report states it: an estimate with its 95% interval."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    unit: str  # "$" (dollars) or what a count counts, e.g. "deals"
    value: float
    low: float | None = None
    high: float | None = None
    p: str = ""  # as the report prints it, e.g. "p = 0.03" or "p < 1/10,000"
    method: str = ""

    def sentence(self) -> str:
        """``name: +$2.68 (95% CI $1.10 to $4.20; p = 0.003)``."""
        def show(v: float) -> str:
            return format_money(round(v * 100)) if self.unit == "$" else f"{v:,.2f}"

        unit = "" if self.unit == "$" else f" {self.unit}"
        interval = "" if self.low is None or self.high is None else f"95% CI {show(self.low)} to {show(self.high)}"
        detail = "; ".join(part for part in (interval, self.p) if part)
        return f"{self.name}: {show(self.value)}{unit}" + (f" ({detail})" if detail else "")


class Headline(BaseModel):
    """What the analysis leaves for the terminal: the report's path and its headline effects."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    report: str
    effects: list[HeadlineEffect]


def comparisons(tiers: Sequence[str], compare: Sequence[str] = ()) -> list[tuple[str, str]]:
    """The ``(measured, baseline)`` pairs to compare, each read "measured minus baseline".

    ``compare`` (the scenario's ``compare:`` or ``--compare``) names the tiers in
    order; without it, every pair of ``tiers`` in the order given. Three or more
    tiers give every pair, the earlier one measured against the later.
    """
    order = list(dict.fromkeys(compare or tiers))
    return [(a, b) for i, a in enumerate(order) for b in order[i + 1:]]


def parse_compare(value: str) -> list[str]:
    """``--compare frontier:small`` (or ``a:b:c``) as the list of tiers it names."""
    tiers = [t.strip() for t in value.split(":")]
    if len(tiers) < 2 or not all(tiers) or len(set(tiers)) != len(tiers) or len(value) > 500:
        raise ValueError(f"--compare: expected TIER:TIER (the measured tier first), got {quoted(value)}")
    return tiers


def describe_tier(scenario: Scenario, tier: str) -> str:
    """How one tier's agents were run, e.g. ``offline profile "small"``, ``anthropic model claude-opus-4-5`` or
    ``custom policy examples.my_agent:build``."""
    settings = scenario.tiers[tier]
    if settings.backend == "offline":
        name = settings.profile or tier
        text = f'offline rule-based profile "{name}"'
        declared = scenario.profiles.get(name)
        if declared is not None:
            changes = ", ".join(f"{k} {_setting(v)}" for k, v in declared.changes().items())
            text += f' (declared in the scenario: "{declared.base}" with {changes or "no changes"})'
        if settings.options:
            text += " with " + ", ".join(f"{k}={v}" for k, v in sorted(settings.options.items()))
        return text
    if is_custom(settings.backend):
        return f"custom policy {settings.backend}" + (f" (model setting {settings.model})" if settings.model else "")
    model = settings.model or "(model not named)"
    if settings.backend == "replay":
        return f"replay of recorded model calls ({model})"
    where = f" at {settings.base_url}" if settings.base_url else ""
    return f"{settings.backend} model {model}{where}"


def is_custom(backend: str) -> bool:
    """Whether ``backend`` is a policy of the researcher's own, given as a dotted path ``package.module:factory``."""
    return ":" in backend


def _setting(value: object) -> str:
    if value is None:
        return "unlimited"
    if isinstance(value, tuple | list):
        return "-".join(f"{v:g}" for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _seeds(seeds: Sequence[int]) -> str:
    seeds = sorted(set(seeds))
    if len(seeds) == 1:
        return f"seed {seeds[0]}"
    if seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"seeds {seeds[0]}-{seeds[-1]} ({len(seeds)} runs)"
    shown = ", ".join(str(s) for s in seeds[:8]) + (", ..." if len(seeds) > 8 else "")
    return f"seeds {shown} ({len(seeds)} runs)"


def _people(scenario: Scenario) -> tuple[int, str]:
    """How many participants and their budgets, in words."""
    given = scenario.participants
    budgets = [p.budget for p in given.people]
    count = len(given.people)
    if given.generate is not None:
        budgets.append(given.generate.budget)
        count += given.generate.count
    low, high = min(budgets), max(budgets)
    return count, (f"{format_money(low)} each" if low == high else f"{format_money(low)} to {format_money(high)}")


def _shares(scenario: Scenario) -> str:
    groups: dict[str, list[str]] = {}
    for m in scenario.markets:
        if len(m.tiers) == 1 and not m.assign:
            mix = f"all {next(iter(m.tiers))}"
        else:
            mix = " / ".join(f"{t} {share:.0%}" for t, share in m.tiers.items())
            if m.assign:
                mix += f" ({len(m.assign)} assigned by hand)"
        groups.setdefault(mix, []).append(m.name)
    return "; ".join(f"{', '.join(names)}: {mix}" for mix, names in groups.items())


def provenance_lines(
    scenario: Scenario, seeds: Sequence[int] = (), compare: Sequence[str] = (), present: Sequence[str] | None = None
) -> list[str]:
    """The lines that open every report and terminal summary: what produced the numbers.

    ``seeds`` are the runs' seeds (default: the scenario's); ``compare`` overrides
    the scenario's ``compare:``; ``present`` are the tiers that took part (default:
    every tier a market uses).
    """
    people, budgets = _people(scenario)
    used = list(dict.fromkeys(t for m in scenario.markets for t in [*m.tiers, *m.assign.values()]))
    tiers = [t for t in scenario.tiers if t in (present if present is not None else used)]
    lines = [
        f"Scenario {scenario.name}: {len(scenario.markets)} market(s) ({_shares(scenario)}), {people} participants "
        f"with budgets of {budgets}, {scenario.days} simulated day(s), {_seeds(seeds or [scenario.seed])}.",
        "Tiers: " + "; ".join(f"{t} = {describe_tier(scenario, t)}" for t in tiers) + ".",
    ]
    offline = [t for t in tiers if scenario.tiers[t].backend == "offline"]
    if offline and len(tiers) > 1:
        names = ", ".join(offline)
        if len(offline) == len(tiers):
            lines.append(
                f"Every tier ran on offline rule-based profiles ({names}): differences between tiers are modelling "
                "assumptions of those profiles (agents/offline.py), not measurements of any model."
            )
        else:
            lines.append(
                f"{names} ran on offline rule-based profiles: {'its' if len(offline) == 1 else 'their'} differences "
                "from other tiers are modelling assumptions of those profiles, not measurements of any model."
            )
    custom = [t for t in tiers if is_custom(scenario.tiers[t].backend)]
    if custom:
        names = ", ".join(custom)
        one = len(custom) == 1
        lines.append(f"{names} ran on {'a custom policy' if one else 'custom policies'} (the code named above): "
                     f"{'its' if one else 'their'} figures are what that code does, not measurements of any model.")
    chosen = list(compare or scenario.compare)
    pairs = comparisons([t for t in chosen if t in tiers] if chosen else tiers)
    if pairs:
        how = "as the scenario's `compare:` names them" if not compare and scenario.compare else \
            "as --compare names them" if compare else \
            "every pair, in the order `tiers:` defines them; set `compare:` in the scenario to choose"
        lines.append("Compared: " + "; ".join(f"{a} minus {b}" for a, b in pairs) + f" ({how}).")
    elif len(tiers) < 2:
        lines.append("Only one tier took part: there is no tier comparison.")
    return lines


def write_headline(run_dir: Path, headline: Headline) -> Path:
    """Store the report's headline for the terminal (``headline.json``)."""
    path = run_dir / HEADLINE_FILE
    write_whole(path, headline.model_dump_json(indent=2) + "\n")
    return path


def closing_lines(run_dir: Path) -> list[str]:
    """What the terminal prints at the end of a run: the report's path and its headline effect(s), if written."""
    path = run_dir / HEADLINE_FILE
    report = run_dir / REPORT_FILE
    try:
        headline = Headline.model_validate_json(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (ValidationError, OSError, json.JSONDecodeError):
        headline = None
    lines = [f"report: {headline.report if headline else report}"] if headline or report.is_file() else []
    if headline:
        lines += [f"headline: {effect.sentence()}" for effect in headline.effects] or [
            "headline: no tier effect could be estimated in this run (one tier, or too few paired observations)"]
    return lines


def run_lines(run_dir: Path) -> list[str]:
    """:func:`provenance_lines` of a run folder's resolved ``scenario.yaml`` (none if it cannot be read)."""
    try:
        return provenance_lines(validate_scenario(RunFolder(run_dir).read_scenario(), "scenario.yaml"))
    except (OSError, RunFolderError, ScenarioError):
        return []
