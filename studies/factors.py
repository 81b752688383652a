"""Scenario fields addressed by path, for experiments and one-off changes (``--set PATH=VALUE``).

A path names a field as it is written in the scenario file, dots between keys
and brackets for lists: ``days``, ``participants.generate.budget``,
``markets[1].tiers.small``, ``tiers.small.profile``, ``tiers.small.options.attention``,
``profiles.medium.attention``. ``[*]`` stands for every element of a list (or
every entry of a mapping): ``markets[*].tiers.small``, ``tiers[*].backend``.
Names in brackets pick the elements of a list by their ``name``: ``markets[B,C].tiers.small.share``
changes markets B and C only. ``markets[name=B,C]`` is the same, and names a market whose name
is a number (``markets[1]`` is the second market); names with brackets, commas or ``=`` cannot be
named in a path. A name that is not in the list is an error naming the names that are.

Two shortcuts, in the words researchers use:

- ``markets[...].tiers.T.share`` (or ``markets[...].tiers.T``) sets tier T's share
  of a market; the other tiers of that market keep their proportions and share
  what is left, and T is added to a market that did not have it
  (``{frontier: 1.0}`` with ``small.share = 0.2`` becomes ``{frontier: 0.8, small: 0.2}``).
- ``participants.budget`` sets the budget of every participant: the generated
  ones and each one listed under ``people:``.

Applying values works on the whole resolved scenario (defaults included) and
validates the result with the scenario schema, so a value is checked exactly
as if it had been written in the file ("$50" is money, a share must lie in
[0, 1], an unknown key is an error). Errors name the path and what is wrong.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from market.backends import BackendContext, build_policies
from market.scenario import (
    CatalogEntry,
    OverlongInteger,
    Scenario,
    ScenarioError,
    budget_warnings,
    build_participants,
    check_kinds,
    dump_scenario,
    load_scenario,
    quoted,
    read_yaml,
    validate_scenario,
)

_TOKEN = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_-]*)|\[\s*(\*|\d+|name\s*=[^\[\]]*|[^\[\]=]*[^\[\]=\d\s][^\[\]=]*)\s*\]")
_SHARE = re.compile(r"^markets\[\d+\]\.tiers$")
ALL = "*"


class FactorError(ScenarioError):
    """A path or value that cannot be applied to a scenario; the message names the path."""


@dataclass(frozen=True)
class Names:
    """The elements of a list picked by their ``name`` field (``markets[B,C]``)."""

    names: tuple[str, ...]

    def __str__(self) -> str:
        return ",".join(self.names)


Part = str | int | Names


@dataclass(frozen=True)
class FieldPath:
    """A parsed field path: keys (str), indexes (int), ``*`` for every element, names of list elements."""

    text: str
    parts: tuple[Part, ...]


def parse_path(text: str) -> FieldPath:
    """Parse ``markets[*].tiers.small.share`` into its parts; a malformed path is a FactorError."""
    parts: list[Part] = []
    position = 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or (position == 0 and match.group(0).startswith(".")):
            raise FactorError(f"{text}: not a field path (expected keys joined by dots, [N] or [*] for lists, "
                              f"e.g. markets[*].tiers.small.share); stuck at {text[position:]!r}")
        key, index = match.groups()
        if key is not None:
            parts.append(key)
        elif index == ALL or index.isdigit():
            parts.append(ALL if index == ALL else int(index))
        else:
            parts.append(_names(text, index))
        position = match.end()
    if not parts or not isinstance(parts[0], str):
        raise FactorError(f"{text!r}: a field path starts with a key, e.g. days or markets[0].tiers")
    return FieldPath(text, tuple(parts))


def _names(text: str, inside: str) -> Names:
    """``B,C`` or ``name=B,C`` inside brackets: the names, each written once."""
    listed = inside.split("=", 1)[1] if inside.startswith("name") and "=" in inside else inside
    names = tuple(n.strip() for n in listed.split(","))
    if any(not n for n in names) or len(set(names)) != len(names):
        raise FactorError(f"{text}: [{inside}] names list elements: names separated by commas, each once "
                          "(e.g. markets[B,C])")
    return Names(names)


def _where(parts: tuple[Part, ...]) -> str:
    out = ""
    for part in parts:
        plain = isinstance(part, str) and part != ALL
        out += (f".{part}" if out else part) if plain else f"[{part}]"
    return out


def set_path(data: Any, path: FieldPath, value: Any) -> Any:
    """``data`` (plain dicts and lists) with the field at ``path`` set to ``value``; ``data`` is not changed."""
    parts = path.parts
    if parts[0] == "participants" and len(parts) == 2 and parts[1] == "budget":
        return _set_budget(data, value, path.text)
    return _set(data, parts, (), value, path.text)


def _set(node: Any, rest: tuple[Part, ...], done: tuple[Part, ...], value: Any, text: str) -> Any:
    if not rest:
        return value
    head, tail = rest[0], rest[1:]
    here = _where(done)
    if isinstance(node, dict) and _SHARE.match(here) and isinstance(head, str) and tail in ((), ("share",)):
        return _set_share(node, head, value, f"{text}: {here}")
    if head == ALL:
        if isinstance(node, list):
            return [_set(item, tail, (*done, i), value, text) for i, item in enumerate(node)]
        if isinstance(node, dict):
            return {k: _set(v, tail, (*done, k), value, text) for k, v in node.items()}
        raise FactorError(f"{text}: {here or 'the scenario'} is not a list or mapping, so [*] does not apply")
    if isinstance(head, Names):
        return _set_named(node, head, tail, done, value, text)
    if isinstance(head, int):
        if not isinstance(node, list):
            raise FactorError(f"{text}: {here} is not a list, so [{head}] does not apply")
        if head >= len(node):
            raise FactorError(f"{text}: {here} has {len(node)} entries; [{head}] is out of range")
        out = list(node)
        out[head] = _set(node[head], tail, (*done, head), value, text)
        return out
    if not isinstance(node, dict):
        what = "not set in this scenario" if node is None else f"a value ({node!r}), not a mapping"
        raise FactorError(f"{text}: {here} is {what}, so it has no field {head!r}")
    if head not in node and tail:
        known = ", ".join(map(str, node)) or "none"
        raise FactorError(f"{text}: {_where((*done, head))} is not a field (fields here: {known})")
    out = dict(node)
    out[head] = _set(node.get(head), tail, (*done, head), value, text)
    return out


def _set_named(node: Any, head: Names, tail: tuple[Part, ...], done: tuple[Part, ...], value: Any,
               text: str) -> list[Any]:
    """The elements of list ``node`` whose ``name`` is one of ``head``'s set; an unknown name is an error."""
    here = _where(done)
    if not isinstance(node, list) or not all(isinstance(item, dict) and "name" in item for item in node):
        raise FactorError(f"{text}: {here} is not a list of named entries, so [{head}] does not apply")
    known = [str(item["name"]) for item in node]
    unknown = [n for n in head.names if n not in known]
    if unknown:
        what = "market" if here == "markets" else "entry"
        raise FactorError(f"{text}: no {what} named {', '.join(unknown)} in {here} "
                          f"(the {here} are {', '.join(known)})")
    return [_set(item, tail, (*done, i), value, text) if str(item["name"]) in head.names else item
            for i, item in enumerate(node)]


def _set_share(tiers: dict[str, Any], tier: str, value: Any, where: str) -> dict[str, Any]:
    """Tier ``tier`` gets share ``value``; the others keep their proportions within the rest."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise FactorError(f"{where}.{tier}: a share is a number between 0 and 1, got {value!r}")
    others = {k: float(v) for k, v in tiers.items() if k != tier}
    rest = sum(others.values())
    if value < 1 and rest <= 0:
        raise FactorError(f"{where}.{tier}: no other tier in this market takes the remaining {1 - value:g}; "
                          "set the whole mapping instead, e.g. {frontier: 0.5, small: 0.5}")
    out = {k: (v * (1 - value) / rest if rest else 0.0) for k, v in others.items()}
    out[tier] = float(value)
    return {k: v for k, v in out.items() if v > 0 or k == tier}


def _set_budget(data: dict[str, Any], value: Any, text: str) -> dict[str, Any]:
    participants = dict(data.get("participants") or {})
    if participants.get("generate") is not None:
        participants["generate"] = {**participants["generate"], "budget": value}
    participants["people"] = [{**person, "budget": value} for person in participants.get("people") or []]
    if participants.get("generate") is None and not participants["people"]:
        raise FactorError(f"{text}: the scenario has no participants to give a budget")
    return {**data, "participants": participants}


def parse_assignment(text: str) -> tuple[FieldPath, Any]:
    """``PATH=VALUE`` from the command line; VALUE is read as YAML (``0.2``, ``"$50"``, ``[1.1, 1.3]``)."""
    path, sep, raw = text.partition("=")
    if not sep or not path.strip():
        raise FactorError(f"--set {quoted(text)}: expected PATH=VALUE, e.g. --set participants.budget='$50'")
    try:
        value = read_yaml(raw) if raw.strip() else ""
    except OverlongInteger as exc:
        raise FactorError(f"--set {path.strip()}: {exc.problem}") from None
    except yaml.YAMLError:
        value = raw
    return parse_path(path), value


def canonical(value: Any) -> str:
    """A stable text of a value (for seeds and comparisons)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def as_data(scenario: Scenario) -> dict[str, Any]:
    """The resolved scenario as plain data (defaults included, money in cents)."""
    return json.loads(scenario.model_dump_json())


def apply(scenario: Scenario, catalog: list[CatalogEntry], values: Mapping[str, Any], source: str) -> Scenario:
    """``scenario`` with each path set to its value, validated as a whole by the scenario schema.

    ``source`` names where the values came from (a file, ``--set``) in errors.
    """
    data = as_data(scenario)
    for text, value in values.items():
        try:
            data = set_path(data, parse_path(text), value)
        except FactorError as exc:
            raise FactorError(f"{source}: {exc}") from None
    label = ", ".join(f"{k}={quoted(v, shown)}" for k, v in values.items())
    try:
        changed = validate_scenario(data, f"{source}: with {label}: scenario")
        check_kinds(changed, catalog, f"{source}: with {label}: scenario")
    except ScenarioError as exc:
        raise FactorError(str(exc)) from None
    return changed


def load_with(
    path: Path | str, values: Mapping[str, Any], source: str = "--set"
) -> tuple[Scenario, list[CatalogEntry]]:
    """Load a scenario file and apply ``values`` (path -> value) to it."""
    scenario, catalog = load_scenario(path)
    return (apply(scenario, catalog, values, source) if values else scenario), catalog


@dataclass(frozen=True)
class TierChange:
    """A market whose set of tiers differs from the base scenario's: tiers it gains and loses.

    ``before`` is empty for a market the base scenario does not have, ``after`` for one it lost.
    """

    market: str
    before: tuple[str, ...]
    after: tuple[str, ...]

    @property
    def gains(self) -> tuple[str, ...]:
        """The tiers in ``after`` but not in ``before``, in ``after``'s order."""
        return tuple(t for t in self.after if t not in self.before)

    @property
    def loses(self) -> tuple[str, ...]:
        """The tiers in ``before`` but not in ``after``, in ``before``'s order."""
        return tuple(t for t in self.before if t not in self.after)

    def text(self) -> str:
        """``A: frontier only -> frontier + small (gains small)``."""
        def held(tiers: tuple[str, ...]) -> str:
            return "no such market" if not tiers else f"{tiers[0]} only" if len(tiers) == 1 else " + ".join(tiers)

        moves = [f"gains {', '.join(self.gains)}"] if self.gains else []
        moves += [f"loses {', '.join(self.loses)}"] if self.loses else []
        return f"{self.market}: {held(self.before)} -> {held(self.after)} ({'; '.join(moves)})"


def market_tiers(scenario: Scenario) -> dict[str, tuple[str, ...]]:
    """Each market's tiers: those with a share above 0 and those assigned to someone, in the scenario's order."""
    out = {}
    for market in scenario.markets:
        named = {t for t, share in market.tiers.items() if share > 0} | set(market.assign.values())
        out[market.name] = tuple(t for t in dict.fromkeys([*scenario.tiers, *market.tiers]) if t in named)
    return out


def tier_changes(base: Scenario, changed: Scenario) -> list[TierChange]:
    """The markets of ``changed`` that hold other tiers than in ``base`` (gained, lost, or new markets)."""
    before, after = market_tiers(base), market_tiers(changed)
    names = list(dict.fromkeys([*after, *before]))
    return [TierChange(name, before.get(name, ()), after.get(name, ()))
            for name in names if set(before.get(name, ())) != set(after.get(name, ()))]


def shown(value: Any) -> str:
    """A factor value as text: a string as it is, anything else as its canonical JSON."""
    return value if isinstance(value, str) else canonical(value)


def write_resolved(scenario: Scenario, catalog_path: Path, folder: Path, name: str = "scenario.yaml") -> Path:
    """Write ``scenario`` (resolved) and a copy of its catalog into ``folder``; returns the scenario file.

    The file is written only when it is new or different, so a resumed experiment keeps its files.
    """
    folder.mkdir(parents=True, exist_ok=True)
    # the targets file is not copied: the cell compares nothing with published figures (the experiment reports)
    text = dump_scenario(scenario.model_copy(update={"catalog": "catalog.csv", "targets": None}))
    target = folder / name
    if not target.is_file() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")
    catalog = folder / "catalog.csv"
    source = catalog_path.read_bytes()
    if not catalog.is_file() or catalog.read_bytes() != source:
        catalog.write_bytes(source)
    return target


def check_runnable(scenario: Scenario, catalog: list[CatalogEntry], where: str) -> list[str]:
    """Participants and backends of ``scenario`` can be built (what a run checks before writing anything); the
    plan's warnings (:func:`market.scenario.budget_warnings`, as ``runner.plan`` gives them)."""
    try:
        people = build_participants(scenario, catalog)
        build_policies(BackendContext(scenario=scenario, run_dir=None, options={}))
    except (ScenarioError, ValueError) as exc:
        raise FactorError(f"{where}: {exc}") from None
    return budget_warnings(scenario, people)
