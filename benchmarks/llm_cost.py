"""Tokens and dollars per deal per tier, and the share of input tokens read from cache.

Runs deal.yaml (all four markets) for one simulated day on the fake Anthropic API
(frontier = claude-opus-4-5, small = claude-haiku-4-5, priced from
agents/llm/pricing.yaml), and smoke.yaml for a five-day week for the cache share.
Token counts are the fake's (bytes of compact JSON / 4, simulated prompt caching with the
models' 4096-token minimum), so the figures are estimates of shape, not a bill.

    python benchmarks/llm_cost.py [--days 1] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from llm_common import model_tiers, start_fake, variant

from running import runner
from running.runfolder import RunFolder


def run(scenario: Path, url: str, concurrency: int, tmp: Path) -> dict:
    prepared = runner.plan(scenario, tiers=model_tiers(url), options={"concurrency": concurrency})
    folder = RunFolder.create(tmp, "r", exact=tmp / f"run-{scenario.stem}")
    return runner.start(prepared, folder, after_run=False).summary.as_json()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    proc, url = start_fake("anthropic")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            scenario = variant("deal.yaml", Path(tmp) / "deal", days=args.days)
            summary = run(scenario, url, args.concurrency, Path(tmp))
            deals: dict[str, int] = {}
            for m in summary["markets"]:
                for tier, t in m["tiers"].items():
                    deals[tier] = deals.get(tier, 0) + t["deals_as_seller"] + t["deals_as_buyer"]
            llm = summary["llm"]
            total_deals = sum(m["deals"] for m in summary["markets"])
            print(f"deal.yaml, {args.days} day(s), 4 markets: {total_deals} deals, {llm['total']['calls']} calls, "
                  f"cost ${llm['total']['cost_usd']:.2f}, cache share {llm['total']['cache_share']:.1%}")
            print("(a deal counts once for each tier on its two sides)")
            print(f"{'tier':>9} {'model':>17} {'deals':>6} {'in tok/deal':>12} {'out tok/deal':>13} "
                  f"{'$/deal':>8} {'cache share':>12}")
            for tier, t in llm["tiers"].items():
                n = deals.get(tier, 0) or 1
                tokens_in = t["input_tokens"] + t["cache_read_tokens"] + t["cache_write_tokens"]
                print(f"{tier:>9} {llm['models'][tier]['model']:>17} {deals.get(tier, 0):>6} {tokens_in / n:>12,.0f} "
                      f"{t['output_tokens'] / n:>13,.0f} {t['cost_usd'] / n:>8.3f} {t['cache_share']:>12.1%}")
            smoke = variant("smoke.yaml", Path(tmp) / "smoke", days=5)
            week = run(smoke, url, args.concurrency, Path(tmp))["llm"]["total"]
            total_in = week["input_tokens"] + week["cache_read_tokens"] + week["cache_write_tokens"]
            print(f"smoke.yaml week (5 days): cache share of input tokens {week['cache_share']:.1%} "
                  f"({week['cache_read_tokens']:,} of {total_in:,})")
    finally:
        proc.kill()
        proc.wait()


if __name__ == "__main__":
    main()
