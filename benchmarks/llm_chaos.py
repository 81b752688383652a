"""A chaos day: deal.yaml, one simulated day, a fake API at 200 ms failing on ~5% of calls across every fault kind.

Runs the day twice at the same concurrency (default 32), fault-free then with faults, in
this process against the fake API in another (tests/llm/fakes.py): 429s, 529s, 500s,
malformed and unknown tool calls, answers cut off at max_tokens, refusals, 400s for a
conversation, prompts over the context window and hostile JSON (4,301-digit numbers,
3,000-deep nesting), each on every Nth request (N near 200, so ~0.5% each). Prints the
wall times and their ratio, the batch-aware bound of the fault-free run, and each fault
the fake sent beside what the run counted (summary.json: llm faults and failed turns).

    python benchmarks/llm_chaos.py [--latency 0.2] [--concurrency 32] [--retry-wait 0.5]
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from llm_common import count_batches, model_tiers, start_fake, variant

from running import runner
from running.runfolder import RunFolder

# fault mode -> every how many requests (primes near 200: ~0.5% each, ~5.5% in all, rarely on the same call)
CHAOS = {"rate_limit": 211, "overloaded": 199, "server_error": 197, "malformed": 193, "unknown_tool": 191,
         "max_tokens": 181, "refusal": 179, "bad_request": 173, "context": 167, "hostile_json": 163}
# where the run counts each mode: (section, key) of summary.json's llm.total
COUNTED = {"rate_limit": ("faults", "rate_limited"), "overloaded": ("faults", "overloaded"),
           "server_error": ("faults", "server_error"), "malformed": ("faults", "malformed_calls"),
           "unknown_tool": ("faults", "malformed_calls"), "max_tokens": ("faults", "cut_off"),
           "refusal": ("faults", "refusals"), "bad_request": ("failures", "bad_request"),
           "context": ("failures", "context_too_long"), "hostile_json": ("failures", "hostile_json")}


def run_day(args: argparse.Namespace, faults: dict[str, int], batches: list[int]) -> tuple[float, dict, dict]:
    """(wall seconds, summary.json, the fake's stats) of one day at ``args.concurrency``."""
    proc, url = start_fake("anthropic", args.latency, faults)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            scenario = variant("deal.yaml", Path(tmp), days=1, timing={
                "wake_every_minutes": {"min": 60, "max": 60}, "reaction_minutes": {"min": 5, "max": 40},
                "tick_minutes": 60})
            prepared = runner.plan(scenario, markets=args.markets.split(","), tiers=model_tiers(url),
                                   options={"concurrency": args.concurrency, "retry_wait": args.retry_wait})
            folder = RunFolder.create(Path(tmp), "b", exact=Path(tmp) / "run")
            batches.clear()
            started = time.perf_counter()
            result = runner.start(prepared, folder, after_run=False)
            wall = time.perf_counter() - started
            summary = json.loads((Path(tmp) / "run" / "summary.json").read_text())
            assert result.complete, summary.get("stopped")
        base = url.removesuffix("/v1")
        with urllib.request.urlopen(f"{base}/stats", timeout=10) as answer:
            stats: dict[str, Any] = json.loads(answer.read())
    finally:
        proc.kill()
        proc.wait()
    return wall, summary, stats


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--retry-wait", type=float, default=0.5,
                        help="first backoff of a retried call (seconds; the run's default, as the SDKs')")
    parser.add_argument("--markets", default="A,B,C,D")
    args = parser.parse_args()
    batches = count_batches()
    print(f"deal.yaml markets {args.markets}, one day, hourly ticks; fake API {args.latency * 1000:.0f} ms; "
          f"concurrency {args.concurrency}; first retry backoff {args.retry_wait} s")
    clean_wall, clean, _ = run_day(args, {}, batches)
    bound = sum(math.ceil(n / args.concurrency) for n in batches if n) * args.latency
    chaos_wall, chaos, stats = run_day(args, CHAOS, batches)
    calls = clean["llm"]["total"]["calls"]
    print(f"fault-free: {calls} calls, wall {clean_wall:.2f} s, batch bound {bound:.2f} s, "
          f"ratio {clean_wall / bound:.2f}")
    sent = stats["faults_sent"]
    total = chaos["llm"]["total"]
    print(f"chaos:      {total['calls']} answered calls of {stats['requests']} requests, "
          f"{sum(sent.values())} faults ({sum(sent.values()) / stats['requests']:.1%}), wall {chaos_wall:.2f} s, "
          f"{chaos_wall / clean_wall:.2f}x the fault-free run; requests refused by the contract: "
          f"{len(stats['refused'])}")
    print(f"{'fault':<14} {'sent':>5} {'counted as':<28} {'counted':>8}")
    for mode in CHAOS:
        section, key = COUNTED[mode]
        print(f"{mode:<14} {sent.get(mode, 0):>5} {section + '.' + key:<28} {total[section].get(key, 0):>8}")
    failed = {k: v for k, v in (chaos.get("failures") or {}).items()}
    print(f"all llm faults: {json.dumps(total['faults'])}")
    print(f"failed turns (llm): {json.dumps(total['failures'])}; summary.json failures: {json.dumps(failed)}")


if __name__ == "__main__":
    main()
