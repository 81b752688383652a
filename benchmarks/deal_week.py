"""The reference week, all four markets: wall time, events/s, and the tier figures.

Also the engine's own overhead: the same number of SimPy timeouts scheduled by
a bare loop, timed in the same process, and the ratio between the two.

    python benchmarks/deal_week.py [--seed N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import simpy

from market import runner
from market.backends import Policy
from market.money import format_money
from market.runfolder import RunFolder

ROOT = Path(__file__).resolve().parents[1]


def bare_simpy(timeouts: int) -> float:
    """Seconds for a bare SimPy loop to schedule and process ``timeouts`` timeouts."""
    env = simpy.Environment()

    def ticker(env: simpy.Environment, n: int):  # type: ignore[no-untyped-def]
        for _ in range(n):
            yield env.timeout(1)

    start = time.perf_counter()
    env.process(ticker(env, timeouts))
    env.run()
    return time.perf_counter() - start


class Idle(Policy):
    """A policy that always passes: what is left is the engine itself."""

    def decide(self, observation):  # type: ignore[no-untyped-def]
        from market.observation import Decision

        return Decision()


def idle_engine() -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        prepared = runner.plan(ROOT / "scenarios" / "deal.yaml")
        prepared.policies = {tier: Idle() for tier in prepared.policies}  # type: ignore[misc]
        folder = RunFolder.create(Path(tmp), "idle", exact=Path(tmp) / "run")
        start = time.perf_counter()
        result = runner.start(prepared, folder, after_run=False)
        wall = time.perf_counter() - start
        wakes = sum(t.steps for m in result.model.markets for t in m.traders.values())  # type: ignore[union-attr]
    return wall, wakes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        prepared = runner.plan(ROOT / "scenarios" / "deal.yaml", seed=args.seed)
        folder = RunFolder.create(Path(tmp), "deal", exact=Path(tmp) / "run")
        decisions = 0

        def count(model, at):  # type: ignore[no-untyped-def]
            nonlocal decisions
            decisions = sum(t.steps for m in model.markets for t in m.traders.values())

        result = runner.start(prepared, folder, on_batch=count, after_run=False)
        wall = time.perf_counter() - start
    events = result.summary["events"]
    print(f"deal.yaml, 4 markets x 69 traders, 5 days: {wall:.2f} s wall, {events:,} events, "
          f"{events / wall:,.0f} events/s, {decisions:,} decisions")
    idle_wall, wakes = idle_engine()
    print(f"engine with do-nothing policies: {wakes:,} trader wakes in {idle_wall:.2f} s "
          f"({wakes / idle_wall:,.0f} wakes/s: scheduling, batching, observations, SQLite)")
    bare_wakes = bare_simpy(wakes)
    print(f"bare SimPy loop, {wakes:,} timeouts: {bare_wakes:.3f} s; the engine's own overhead per wake is "
          f"{idle_wall / bare_wakes:.0f}x a bare timeout")
    bare = bare_simpy(events)
    print(f"bare SimPy loop, {events:,} timeouts: {bare:.3f} s ({events / bare:,.0f} events/s); "
          f"engine events/s is 1/{(events / bare) / (events / wall):.0f} of bare SimPy "
          f"(the difference is observations, policies, exchange rules and SQLite)")
    for m in result.summary["markets"]:
        print(f"market {m['market']}: {m['listings']} listings, {m['deals']} deals, "
              f"{format_money(m['volume_cents'])} traded, {m['deals_per_participant']:.2f} deals/participant")
        tiers = m["tiers"]
        for tier, t in tiers.items():
            print(f"    {tier:9} n={t['participants']:2}  deals/participant {t['deals_per_participant']:.2f}  "
                  f"price/value as seller {t['price_ratio_as_seller'] or 0:.3f}  "
                  f"as buyer {t['price_ratio_as_buyer'] or 0:.3f}")
        if {"frontier", "small"} <= set(tiers):
            f, s = tiers["frontier"], tiers["small"]
            ahead = [
                f["price_ratio_as_seller"] > s["price_ratio_as_seller"],
                f["price_ratio_as_buyer"] < s["price_ratio_as_buyer"],
                f["deals_per_participant"] > s["deals_per_participant"],
            ]
            print(f"    frontier ahead on seller price / buyer price / deals per participant: {ahead}")


if __name__ == "__main__":
    main()
