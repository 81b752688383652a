"""What the engine's guarantees alone cost per event (beside 1/30 of a bare SimPy loop, an old goal
kept as a reference only: README "Engine speed" says why it is no goal).

The engine promises two things that cost time on every event whatever the policies do:

* the ledger: each event written as canonical JSON, read back through its schema before any
  of its batch is written, and stored in one SQLite transaction per batch (kill -9 safe);
* identical streams: every draw comes from a stream keyed by a string, one per trader, turn and
  purpose (version 1: a Mersenne Twister seeded as ``random.Random(key)`` seeds it; version 2: BLAKE2b
  in counter mode, a one-number draw without a generator).

This script runs the deal.yaml week once, then times, in the same process, those two parts
alone on that week's own events and generator count:

* the ledger: the week's events appended again to an empty ledger, batched by time as the
  engine batches them (best of three);
* the seeding: as many keyed streams of the scenario's version as the week started, counted
  with cProfile on a second run (best of three);

and a bare SimPy loop over as many timeouts (best of five). The budget at 1/30 of bare SimPy
is 30 bare timeouts per event; the script prints how much of it the guarantees leave for
observations, policies and the exchange rules.

    python benchmarks/floor.py [--seed N]
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import pstats
import sys
import tempfile
import time
from pathlib import Path

from market.events import Event
from market.ledger import Ledger
from market.randomness import STREAMS, CounterStreams, keyed_random
from running import runner
from running.runfolder import RunFolder

sys.path.insert(0, str(Path(__file__).resolve().parent))
from deal_week import bare_simpy, timed_week, wakes

ROOT = Path(__file__).resolve().parents[1]
RATIO = 30


def week_events(prepared: runner.Plan) -> list[tuple[str, Event]]:
    """The (market, event) pairs a planned week writes, in ledger order."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = RunFolder.create(Path(tmp), "deal", exact=Path(tmp) / "run")
        runner.start(prepared, folder, after_run=False)
        with Ledger(folder.ledger) as ledger:
            return [(r.market, r.event) for r in ledger.records()]


def ledger_seconds(entries: list[tuple[str, Event]], tries: int = 3) -> tuple[float, int]:
    """Best CPU seconds to append ``entries`` to an empty ledger, batched by event time, and the
    number of batches."""
    batches = [list(group) for _, group in itertools.groupby(entries, key=lambda e: e[1].at)]
    best = float("inf")
    for _ in range(tries):
        with tempfile.TemporaryDirectory() as tmp, Ledger(Path(tmp) / "ledger.db", create=True) as ledger:
            start = time.process_time()
            for batch in batches:
                ledger.append_many(batch)
            best = min(best, time.process_time() - start)
    return best, len(batches)


def streams_keyed(prepared: runner.Plan) -> tuple[int, int]:
    """How many keyed streams a planned week starts: generators, and one-number draws made without one
    (version 2's ``CounterStreams.uniform``; version 1 draws those through a generator). cProfile's counts."""
    version = prepared.scenario.streams
    profile = cProfile.Profile()
    profile.enable()
    timed_week(prepared)
    profile.disable()
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    codes = keyed_random.__code__, CounterStreams.generator.__code__, CounterStreams.uniform.__code__
    counted = dict.fromkeys(((code.co_firstlineno, code.co_name) for code in codes), 0)
    for (file, line, name), (_, calls, *_) in stats.items():
        if file.endswith("randomness.py") and (line, name) in counted:
            counted[line, name] = calls
    mersenne, counter, draws = counted.values()
    return (mersenne, 0) if version == 1 else (counter, draws)


def seeding_seconds(version: int, generators: int, draws: int, tries: int = 3) -> float:
    """Best CPU seconds to key ``generators`` generators and make ``draws`` one-number draws of the streams
    ``version``, from keys shaped like the engine's."""
    streams = STREAMS[version]
    keys = [f"20251:B:p{i % 69}:{i}:bid" for i in range(max(generators, draws))]
    best = float("inf")
    for _ in range(tries):
        start = time.process_time()
        for key in keys[:generators]:
            streams.generator(key).random()
        for key in keys[:draws]:
            streams.uniform(key, 0, 1)
        best = min(best, time.process_time() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int)
    args = parser.parse_args()
    scenario = ROOT / "scenarios" / "deal.yaml"
    _, cpu, result = timed_week(runner.plan(scenario, seed=args.seed))
    events = result.summary.events
    decisions = wakes(result.model)
    entries = week_events(runner.plan(scenario, seed=args.seed))
    assert len(entries) == events, (len(entries), events)
    ledger, batches = ledger_seconds(entries)
    prepared = runner.plan(scenario, seed=args.seed)
    generators, draws = streams_keyed(prepared)
    seeding = seeding_seconds(prepared.scenario.streams, generators, draws)
    _, bare = bare_simpy(events)

    def us(seconds: float) -> str:
        return f"{seconds / events * 1e6:6.1f} us/event"

    budget = RATIO * bare
    print(f"deal.yaml week: {events:,} events, {decisions:,} decisions, {cpu:.2f} s CPU = {us(cpu)}")
    print(f"bare SimPy, as many timeouts:       {bare:.3f} s CPU = {us(bare)}")
    print(f"1/{RATIO} of bare SimPy (old goal):    {budget:.3f} s CPU = {us(budget)}")
    print(f"ledger, the week's events again:    {ledger:.3f} s CPU = {us(ledger)} ({batches:,} batches)")
    print(f"seeding (streams version {prepared.scenario.streams}), {generators:,} generators and {draws:,} "
          f"one-number draws: {seeding:.3f} s CPU = {us(seeding)}")
    floor = ledger + seeding
    print(f"the guarantees alone: {floor:.3f} s CPU = {us(floor)}, {floor / budget:.0%} of the budget; "
          f"left for observations, policies and the exchange: {us(max(budget - floor, 0))}, "
          f"{max(budget - floor, 0) / decisions * 1e6:.1f} us per decision "
          f"(they take {(cpu - floor) / decisions * 1e6:.1f} us per decision now)")


if __name__ == "__main__":
    main()
