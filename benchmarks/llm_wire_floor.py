"""The floor under ``llm_concurrency.py``: the same requests sent by a client that does nothing else.

First the run of ``llm_concurrency.py`` (deal.yaml's four markets, one day of hourly wakes) is made against a fake
API with no latency, and each request body is kept with its batch. Then those bodies are POSTed again to a fresh
fake API at ``--latency``, batch after batch, by bare aiohttp at ``--concurrency`` in flight: ``concurrency``
workers each send the next body as soon as the last one's answer is read (a 429 is sent again after its
retry-after). No engine, no policy, no SDK, no cassette: what is left over the bounds (the same ones
``llm_concurrency.py`` prints) is the fake's own time, the loop's and the machine's, which no client removes.

    python benchmarks/llm_wire_floor.py [--latency 0.2] [--concurrency 32] [--faults rate_limit=20]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
from llm_common import count_batches, model_tiers, start_fake, variant

from agents.llm.ratelimit import retry_after
from agents.llm.transport import ModelRequest, ModelResponse, SdkTransport
from running import runner
from running.runfolder import RunFolder

HEADERS = {"x-api-key": "test-key", "anthropic-version": "2023-06-01", "content-type": "application/json"}


def recorded_bodies(markets: str) -> list[list[bytes]]:
    """Each batch's request bodies, from the run made against a fake API with no latency."""
    batches = count_batches()
    bodies: list[list[bytes]] = []
    original = SdkTransport.send

    async def keeping(self: SdkTransport, request: ModelRequest) -> ModelResponse:
        bodies.extend([] for _ in range(len(batches) - len(bodies)))
        bodies[-1].append(request.body)
        return await original(self, request)

    SdkTransport.send = keeping  # type: ignore[method-assign]
    proc, url = start_fake("anthropic")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            scenario = variant("deal.yaml", Path(tmp), days=1, timing={
                "wake_every_minutes": {"min": 60, "max": 60}, "reaction_minutes": {"min": 5, "max": 40},
                "tick_minutes": 60})
            prepared = runner.plan(scenario, markets=markets.split(","), tiers=model_tiers(url),
                                   options={"concurrency": 32})
            runner.start(prepared, RunFolder.create(Path(tmp), "b", exact=Path(tmp) / "run"), after_run=False)
    finally:
        SdkTransport.send = original  # type: ignore[method-assign]
        proc.kill()
        proc.wait()
    return [b for b in bodies if b]


async def send_all(url: str, batches: list[list[bytes]], concurrency: int) -> tuple[float, list[int], list[float]]:
    """(wall seconds, requests sent per batch, each request's round trip) POSTing ``batches`` in turn."""
    sent = [0] * len(batches)
    trips: list[float] = []
    async with aiohttp.ClientSession() as session:

        async def worker(number: int, bodies: Iterator[bytes]) -> None:
            for body in bodies:
                while True:
                    begun = time.perf_counter()
                    async with session.post(url + "/v1/messages", data=body, headers=HEADERS) as answer:
                        await answer.read()
                    trips.append(time.perf_counter() - begun)
                    sent[number] += 1
                    if answer.status != 429:
                        break
                    await asyncio.sleep(retry_after(answer.headers) or 0.0)

        started = time.perf_counter()
        for number, batch in enumerate(batches):
            bodies = iter(batch)  # shared: each worker takes the next body
            await asyncio.gather(*(worker(number, bodies) for _ in range(min(concurrency, len(batch)))))
        return time.perf_counter() - started, sent, trips


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--faults", default="", help="MODE=N,... : the fake fails every Nth request that way")
    parser.add_argument("--markets", default="A,B,C,D")
    args = parser.parse_args()
    faults = {m: int(n) for m, _, n in (f.partition("=") for f in args.faults.split(",") if f)}
    batches = recorded_bodies(args.markets)
    proc, url = start_fake("anthropic", args.latency, faults)
    try:
        wall, sent, trips = asyncio.run(send_all(url, batches, args.concurrency))
    finally:
        proc.kill()
        proc.wait()
    calls = sum(len(b) for b in batches)
    batch_bound = sum(math.ceil(len(b) / args.concurrency) for b in batches) * args.latency
    request_bound = sum(math.ceil(n / args.concurrency) for n in sent) * args.latency
    trips.sort()
    print(f"bare aiohttp, {args.concurrency} in flight, fake API latency {args.latency * 1000:.0f} ms, faults "
          f"{args.faults or 'none'}: {calls} calls in {len(batches)} batches, {sum(sent)} requests")
    print(f"wall {wall:.2f} s; batch bound {batch_bound:.2f} s, ratio {wall / batch_bound:.3f}; request bound "
          f"{request_bound:.2f} s, ratio {wall / request_bound:.3f}")
    print(f"round trip mean {1000 * statistics.mean(trips):.2f} ms, median {1000 * statistics.median(trips):.2f}, "
          f"p90 {1000 * trips[int(0.9 * len(trips))]:.2f}; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores")


if __name__ == "__main__":
    main()
