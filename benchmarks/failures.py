"""Failure isolation's cost: one day of deal.yaml with offline traders, then the same day with
5% of turns failing (an exception in the policy, a deterministic choice of trader and step).

Prints wall time, events, turns and failed turns per tier for both, and the ratio of the two
wall times (same process, same machine): each failed turn is an ``agent_failed`` event and a pass.

    python benchmarks/failures.py [--days N] [--share 0.05]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

from agents.offline import OfflinePolicy
from market.observation import Decision, Observation
from market.scenario import FailureLimits
from running import runner
from running.runfolder import RunFolder

ROOT = Path(__file__).resolve().parents[1]


class Flaky(OfflinePolicy):
    """An offline trader whose policy raises on a fixed share of (trader, step) turns."""

    def __init__(self, inner: OfflinePolicy, share: float) -> None:
        super().__init__(inner.profile, inner.seed)
        self.every = round(1 / share)

    def decide(self, obs: Observation) -> Decision:
        if zlib.crc32(f"{obs.market}:{obs.trader}:{obs.step}".encode()) % self.every == 0:
            raise RuntimeError("flaky policy")
        return super().decide(obs)


def one_day(days: int, share: float | None) -> tuple[float, dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        prepared = runner.plan(ROOT / "scenarios" / "deal.yaml", days=days)
        prepared.scenario = prepared.scenario.model_copy(update={"failures": FailureLimits(max_share=1.0)})
        if share:
            prepared.policies = {t: Flaky(p, share) for t, p in prepared.policies.items()}  # type: ignore[arg-type]
        folder = RunFolder.create(Path(tmp), "deal", exact=Path(tmp) / "run")
        start = time.perf_counter()
        result = runner.start(prepared, folder, after_run=False)
        return time.perf_counter() - start, result.summary.as_json()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--share", type=float, default=0.05)
    args = parser.parse_args()
    base_wall, base = one_day(args.days, None)
    wall, flaky = one_day(args.days, args.share)
    for name, w, s in (("fault-free", base_wall, base), (f"{args.share:.0%} failing", wall, flaky)):
        tiers = ", ".join(f"{t} {c['failed']}/{c['turns']}" for t, c in s["failures"]["tiers"].items())
        print(f"deal.yaml, {args.days} day(s), {name}: {w:.2f} s wall, {s['events']:,} events, "
              f"status {s['status']}; failed/turns per tier: {tiers}")
    print(f"wall time ratio (failing / fault-free): {wall / base_wall:.2f}x")


if __name__ == "__main__":
    main()
