"""The reference week, all four markets: engine time, events/s, and the tier figures.

What is timed is ``runner.start`` alone: the engine's clock, the policies, the exchange and the
ledger (SQLite) from the first event to summary.json. Loading and planning the scenario
(catalog, participants, policies) happen before the clock starts, and nothing is counted
during the run. Wall time and this process's CPU time are both given: the machine may be
shared, and CPU time moves less with its load. With ``--repeat N`` the week runs N times and
each figure is given as the range over the runs.

Also the engine's own overhead: the same number of SimPy timeouts scheduled by a bare loop,
timed in the same process right after each run (best of five), and the ratio of the two events/s.

    python benchmarks/deal_week.py [--seed N] [--repeat N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import simpy

from market.backends import Policy
from market.engine import MarketModel
from market.money import format_money
from market.observation import Decision, Observation
from running import runner
from running.runfolder import RunFolder

ROOT = Path(__file__).resolve().parents[1]


def bare_simpy(timeouts: int, tries: int = 5) -> tuple[float, float]:
    """Wall and CPU seconds for a bare SimPy loop to schedule and process ``timeouts`` timeouts
    (the best of ``tries``: a loop this short is easily slowed by the machine's other work)."""

    def ticker(env: simpy.Environment, n: int):  # type: ignore[no-untyped-def]
        for _ in range(n):
            yield env.timeout(1)

    walls, cpus = [], []
    for _ in range(tries):
        env = simpy.Environment()
        wall, cpu = time.perf_counter(), time.process_time()
        env.process(ticker(env, timeouts))
        env.run()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus)


class Idle(Policy):
    """A policy that always passes: what is left is the engine itself."""

    def decide(self, observation: Observation) -> Decision:
        """Pass."""
        return Decision()


def wakes(model: MarketModel) -> int:
    """Trader turns taken in the run (each trader's steps)."""
    return sum(t.steps for m in model.markets for t in m.traders.values())


def timed_week(prepared: runner.Plan) -> tuple[float, float, runner.RunResult]:
    """Wall and CPU seconds of ``runner.start`` for a planned week, and its result."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = RunFolder.create(Path(tmp), "deal", exact=Path(tmp) / "run")
        wall, cpu = time.perf_counter(), time.process_time()
        result = runner.start(prepared, folder, after_run=False)
        return time.perf_counter() - wall, time.process_time() - cpu, result


def span(values: list[float], fmt: str) -> str:
    """``values`` as ``low-high`` (or one figure when the run was once)."""
    low, high = min(values), max(values)
    return format(low, fmt) if len(values) == 1 or f"{low:{fmt}}" == f"{high:{fmt}}" else \
        f"{low:{fmt}}-{high:{fmt}}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int)
    parser.add_argument("--repeat", type=int, default=1, help="run the week this many times (figures as ranges)")
    args = parser.parse_args()
    walls, cpus, ratios, cpu_ratios, bare_rates = [], [], [], [], []
    result: Any = None
    for _ in range(args.repeat):
        wall, cpu, result = timed_week(runner.plan(ROOT / "scenarios" / "deal.yaml", seed=args.seed))
        events = result.summary.events
        bare_wall, bare_cpu = bare_simpy(events)
        walls.append(wall)
        cpus.append(cpu)
        bare_rates.append(events / bare_wall)
        ratios.append(wall / bare_wall)
        cpu_ratios.append(cpu / bare_cpu)
    decisions = wakes(result.model)
    rates = [events / w for w in walls]
    print(f"deal.yaml, 4 markets x 69 traders, 5 days ({args.repeat} run(s), runner.start only): "
          f"{span(walls, '.2f')} s wall, {span(cpus, '.2f')} s CPU, {events:,} events, "
          f"{span(rates, ',.0f')} events/s, {decisions:,} decisions")
    print(f"bare SimPy loop, {events:,} timeouts: {span(bare_rates, ',.0f')} events/s; engine events/s is "
          f"1/{span(ratios, '.0f')} of bare SimPy's (1/{span(cpu_ratios, '.0f')} in CPU time; the difference is "
          f"observations, policies, exchange rules and SQLite)")
    idle = runner.plan(ROOT / "scenarios" / "deal.yaml", seed=args.seed)
    idle.policies = {tier: Idle() for tier in idle.policies}
    idle_wall, _, idle_result = timed_week(idle)
    idle_wakes = wakes(idle_result.model)
    bare_wakes, _ = bare_simpy(idle_wakes)
    print(f"engine with do-nothing policies: {idle_wakes:,} trader wakes in {idle_wall:.2f} s "
          f"({idle_wakes / idle_wall:,.0f} wakes/s: scheduling, batching, observations, SQLite); "
          f"a bare SimPy loop takes {bare_wakes:.3f} s for as many timeouts, so a wake costs "
          f"{idle_wall / bare_wakes:.0f}x a bare timeout")
    for m in result.summary.as_json()["markets"]:
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
