"""How a week fills up: when each person's agent first checks in, and when each of their items is put up for sale.

Both are drawn from the scenario's seed and the person's id alone, so a person arrives at the same moment in
every market of a run (the markets differ in tiers, not in who shows up when). Days are working days counted
from the opening: 0 is the first day's opening, 1.5 the middle of the second day's working hours.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from market.clock import DAY, HOUR
from market.domain import Participant
from market.scenario import Scenario, WorkingHours


@dataclass(frozen=True)
class Arrival:
    """One person's arrival: their agent's first check-in and, per item, when it is put up for sale (seconds)."""

    at: int
    items: dict[str, int]


def working_time(days: float, hours: WorkingHours) -> int:
    """Seconds since the start, ``days`` working days after the opening (a fraction is that share of a day's hours)."""
    whole = int(days)
    return whole * DAY + hours.start * HOUR + int((days - whole) * (hours.end - hours.start) * HOUR)


def arrival(scenario: Scenario, person: Participant) -> Arrival:
    """When ``person``'s agent checks in and when each of their items comes up, from ``timing.arrival_days`` and
    ``timing.item_arrival_days`` (either may be off: then the first morning, and every item from the arrival)."""
    timing, hours = scenario.timing, scenario.working_hours
    rng = random.Random(f"{scenario.seed}:{person.id}:arrival")
    day = rng.uniform(timing.arrival_days.min, timing.arrival_days.max) if timing.arrival_days else 0.0
    spread = timing.item_arrival_days
    items = {
        item.id: working_time(day + (rng.uniform(spread.min, spread.max) if spread else 0.0), hours)
        for item in person.items
    }
    return Arrival(at=working_time(day, hours), items=items)


def arrivals(scenario: Scenario, people: list[Participant]) -> dict[str, Arrival]:
    """Each person's arrival by id; empty when the scenario spreads neither people nor items over the week."""
    if scenario.timing.arrival_days is None and scenario.timing.item_arrival_days is None:
        return {}
    return {person.id: arrival(scenario, person) for person in people}
