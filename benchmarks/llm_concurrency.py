"""Wall time of model calls at concurrency 8 and 32 against a fake API with 200 ms latency.

The 69 traders of deal.yaml in its four markets, one simulated day, waking hourly on
hourly ticks so that many traders are due together. Prints the calls, the wall time
of the run, the bound ``calls x latency / concurrency`` and the ratio, and also the
batch-aware bound ``sum over batches of ceil(batch / concurrency) x latency``: a
batch must finish before the next starts, so that is the best any scheduler can do.

    python benchmarks/llm_concurrency.py [--latency 0.2] [--concurrency 8 32] [--faults rate_limit=20]

``--faults MODE=N,...`` has the fake fail every Nth request that way (tests/llm/fakes.py); ``rate_limit=20``
is 5% of requests answered 429 (retry-after 10 ms) and sent again. The two bounds above count calls (a
fault's retry, a second 200 ms round trip, counts as overhead); the last columns count the requests sent in
each batch, retries included, ``sum over batches of ceil(requests / concurrency) x latency``: the best a
scheduler can do when those requests must be sent. Fault-free, the two batch bounds are equal.
Then where the time goes: the client's event loop lag (a 5 ms timer, mean and 90th percentile; small means
the client was free to send and read), the fake's CPU per request while serving (its process's CPU during the
run, its start-up excluded, over the requests sent; it chooses the answers one at a time on one loop while
the requests wait out their latency), this process's CPU per call during the run (the engine, the policy and
the SDK client), and the wall time outside model calls (the engine). The two processes share the machine's
cores with each other and with anything else running: the last line gives the time their threads were ready to
run but waited for a CPU (Linux schedstat run delay, per call) and the load average at the end of the run.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from pathlib import Path

from llm_common import (
    count_batches,
    count_requests,
    cpu_seconds,
    loop_lags,
    loop_thread_waits,
    model_tiers,
    model_waits,
    start_fake,
    variant,
    waiting_for_cpu,
)

from running import runner
from running.runfolder import RunFolder


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--faults", default="", help="MODE=N,... : the fake fails every Nth request that way")
    parser.add_argument("--retry-wait", type=float, default=None, help="seconds before a retry with no retry-after")
    parser.add_argument("--markets", default="A,B,C,D", help="markets of deal.yaml (each has the same 69 traders)")
    args = parser.parse_args()
    batches = count_batches()
    sent = count_requests(batches)
    lags = loop_lags()
    waits = model_waits()
    loop_waits = loop_thread_waits()
    faults = {m: int(n) for m, _, n in (f.partition("=") for f in args.faults.split(",") if f)}
    options: dict[str, float] = {} if args.retry_wait is None else {"retry_wait": args.retry_wait}
    print(f"fake API latency {args.latency * 1000:.0f} ms; deal.yaml markets {args.markets} "
          f"(69 traders each), {args.days} day(s), hourly ticks; faults {args.faults or 'none'}")
    print(f"{'conc':>5} {'calls':>6} {'batches':>8} {'wall s':>8} {'bound s':>8} {'ratio':>6} "
          f"{'batch bound s':>14} {'ratio':>6} {'requests':>9} {'request bound s':>16} {'ratio':>6}")
    for concurrency in args.concurrency:
        proc, url = start_fake("anthropic", args.latency, faults)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                scenario = variant("deal.yaml", Path(tmp), days=args.days, timing={
                    "wake_every_minutes": {"min": 60, "max": 60}, "reaction_minutes": {"min": 5, "max": 40},
                    "tick_minutes": 60})
                prepared = runner.plan(scenario, markets=args.markets.split(","), tiers=model_tiers(url),
                                       options={"concurrency": concurrency, **options})
                folder = RunFolder.create(Path(tmp), "b", exact=Path(tmp) / "run")
                batches.clear()
                sent.clear()
                lags.clear()
                waits.clear()
                loop_waits.clear()
                fake_before = cpu_seconds(proc.pid)  # its start-up (imports): not serving
                fake_queued, own_queued = waiting_for_cpu(proc.pid), waiting_for_cpu(os.getpid())
                started, own_before = time.perf_counter(), time.process_time()
                result = runner.start(prepared, folder, after_run=False)
                wall = time.perf_counter() - started
                own_cpu = time.process_time() - own_before
                fake_queued_after, own_queued_after = waiting_for_cpu(proc.pid), waiting_for_cpu(os.getpid())
                llm = result.summary.llm["total"]
                calls = llm["calls"]
                bound = calls * args.latency / concurrency
                batch_bound = sum(math.ceil(n / concurrency) for n in batches if n) * args.latency
                request_bound = sum(math.ceil(n / concurrency) for n in sent if n) * args.latency
                print(f"{concurrency:>5} {calls:>6} {len(batches):>8} {wall:>8.2f} {bound:>8.2f} {wall / bound:>6.2f} "
                      f"{batch_bound:>14.2f} {wall / batch_bound:>6.2f} {sum(sent):>9} {request_bound:>16.2f} "
                      f"{wall / request_bound:>6.2f}")
                fake_after = cpu_seconds(proc.pid)
                lag = sorted(lags) or [0.0]
                print(f"      client loop lag mean {1000 * sum(lag) / len(lag):.1f} ms, p90 "
                      f"{1000 * lag[int(0.9 * len(lag))]:.1f} ms; fake CPU per request "
                      + (f"{1000 * (fake_after - fake_before) / max(1, sum(sent)):.2f} ms"
                         if fake_after is not None and fake_before is not None else "n/a")
                      + f"; this process's CPU per call {1000 * own_cpu / max(1, calls):.2f} ms"
                      + f"; outside model calls {wall - sum(waits):.2f} s")
                if (fake_queued is not None and own_queued is not None and fake_queued_after is not None
                        and own_queued_after is not None):
                    # the policy's event-loop thread has ended by now: its wait was taken as it was closed
                    fake_wait = fake_queued_after - fake_queued
                    own_wait = own_queued_after - own_queued + sum(loop_waits)
                    print(f"      waiting for a CPU per call: the fake {1000 * fake_wait / calls:.2f} ms, this process "
                          f"{1000 * own_wait / calls:.2f} ms; load average {os.getloadavg()[0]:.1f} on "
                          f"{os.cpu_count()} cores")
        finally:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main()
