"""``--estimate`` against the actual run on the fake API: one day of deal.yaml, calls, tokens and dollars.

The estimate (agents/llm/estimate.py) simulates the day with no network; then the same day runs through
the real SDK against the fake Anthropic API (tests/llm/fakes.py, in another process, no faults). The
fake's "model" is the offline policy with seed 0, so at ``--seed 0`` (the default) the estimate's stand-in
is the fake's model: the comparison measures how well the estimate replays the conversations (turns,
prompt growth, trimming, caching), not how well bytes/4 matches a real tokenizer (both count tokens by
that rule) nor how a real model differs from the offline agents. At another seed (e.g. deal.yaml's own,
20251) the stand-in decides differently from the fake's model: a small taste of that difference.
Prints each figure, the actual one and their ratio.

    python benchmarks/llm_estimate.py [--days 1] [--markets A,B,C,D] [--seed 0]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from llm_common import model_tiers, start_fake, variant

from agents.llm.estimate import estimate
from agents.llm.pricing import dollars
from running import runner
from running.runfolder import RunFolder

FIGURES = ("calls", "input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "cost_nanocents")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--markets", default="A,B,C,D")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    markets = args.markets.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        scenario = variant("deal.yaml", Path(tmp), days=args.days, seed=args.seed)
        tiers = {t: {k: v for k, v in s.items() if k != "base_url"} for t, s in model_tiers("http://unused").items()}
        started = time.perf_counter()
        guess = estimate(scenario, markets=markets, tiers=tiers)
        estimated_in = time.perf_counter() - started
        proc, url = start_fake("anthropic", 0.0)
        try:
            prepared = runner.plan(scenario, markets=markets, tiers=model_tiers(url),
                                   options={"concurrency": args.concurrency})
            folder = RunFolder.create(Path(tmp), "b", exact=Path(tmp) / "run")
            started = time.perf_counter()
            result = runner.start(prepared, folder, after_run=False)
            ran_in = time.perf_counter() - started
        finally:
            proc.kill()
            proc.wait()
    print(f"deal.yaml (seed {args.seed}), markets {args.markets}, {args.days} day(s); "
          f"estimate {estimated_in:.1f} s, run on the fake API {ran_in:.1f} s")
    print(f"{'':<8} {'figure':<20} {'estimate':>14} {'actual':>14} {'ratio':>7}")
    tiers_seen = sorted(result.summary.llm["tiers"])
    for where in [*tiers_seen, "total"]:
        est = guess["total"] if where == "total" else guess["tiers"][where]
        real = result.summary.llm["total"] if where == "total" else result.summary.llm["tiers"][where]
        for key in FIGURES:
            a, b = est[key], real[key]
            shown = (f"${dollars(a):.2f}", f"${dollars(b):.2f}") if key == "cost_nanocents" else (f"{a:,}", f"{b:,}")
            name = "dollars" if key == "cost_nanocents" else key
            print(f"{where:<8} {name:<20} {shown[0]:>14} {shown[1]:>14} {a / b if b else float('nan'):>7.3f}")


if __name__ == "__main__":
    main()
