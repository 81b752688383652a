"""Posting speed of `python -m slackbot watch` against the local Web API stub.

1. Runs one deal.yaml market (offline agents), renders it, and posts it to the stub
   at Slack's per-channel pace (1 message/s) for WINDOW seconds: messages per minute.
2. Posts the whole market at pace 0 (no rate limit) to measure the bot's own overhead.
3. From the event times and the pace, the time a full market takes at several --speed
   settings: each post goes out at max(its simulated time / speed, previous + pace).

    python benchmarks/slack_watch.py [--window 60]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from slack_sdk import WebClient  # noqa: E402

from market.ledger import Ledger  # noqa: E402
from running.runfolder import RunFolder  # noqa: E402
from running.runner import plan, start  # noqa: E402
from slackbot.render import render_all  # noqa: E402
from slackbot.watch import watch  # noqa: E402
from tests.slackbot.slack_stub import SlackStub  # noqa: E402


def finish_time(ats: list[int], speed: float | None, pace: float) -> float:
    """Real seconds to post events at simulated seconds ``ats`` (one channel)."""
    t, first = 0.0, ats[0]
    for n, at in enumerate(ats):
        due = (at - first) / speed if speed else 0.0
        t = max(due, t + pace) if n else due
    return t


def _copy(tmp: Path, folder: RunFolder, name: str) -> RunFolder:
    copy = RunFolder.create(tmp, name, exact=tmp / name)
    for file in ("scenario.yaml", "catalog.csv", "ledger.sqlite"):
        (copy.path / file).write_bytes((folder.path / file).read_bytes())
    return copy


def _delivered(stub: SlackStub) -> list[tuple[str, str, str | None]]:
    """(channel name, message text, parent text) of every message, in the order Slack received them."""
    names = {cid: c["name"] for cid, c in stub.state.channels.items()}
    out = []
    for cid, messages in stub.state.messages.items():
        by_ts = {m["ts"]: m["text"] for m in messages}
        out += [(names[cid], m["text"], by_ts.get(m.get("thread_ts", ""))) for m in messages]
    return out


def faults(tmp: Path, folder: RunFolder, retry_after: int) -> None:
    """The whole market posted unpaced, fault-free, then with 5% 429s and 1% transient errors on every method."""
    runs = {}
    for label, chaos in (("fault-free", None), ("5% 429 + 1% transient", (0.05, 0.01))):
        stub = SlackStub().start()
        injected = None
        if chaos:
            injected = stub.chaos(*chaos, retry_after=retry_after, seed=1)
        client = WebClient(token="xoxb-bench", base_url=stub.base_url)
        result = watch(_copy(tmp, folder, label.split()[0].replace("%", "")).path, client, prefix="bench-", pace=0.0)
        runs[label] = (result, _delivered(stub), len(stub.calls()), injected.injected if injected else 0)
        stub.stop()
    (base, base_msgs, base_calls, _), (hit, hit_msgs, hit_calls, injected) = runs.values()
    from collections import Counter

    once = Counter(hit_msgs) == Counter(base_msgs)  # the same messages, each as often as without faults
    print(f"watch of market A, unpaced, faults answered {injected} of {hit_calls} Web API calls "
          f"(Retry-After {retry_after} s):")
    print(f"  fault-free: {base.sent} messages in {base.seconds:.1f}s ({base_calls} calls)")
    print(f"  with faults: {hit.sent} messages in {hit.seconds:.1f}s; failed {len(hit.failed)}; "
          f"time x{hit.seconds / base.seconds:.2f} of the fault-free run")
    print(f"  every message exactly once: {once and hit.sent == base.sent}; same order, same threads: "
          f"{hit_msgs == base_msgs}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--faults-only", action="store_true", help="only the run with faults and its baseline")
    parser.add_argument("--retry-after", type=int, default=1, help="seconds the stub's 429s ask to wait")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    folder = RunFolder.create(tmp, "deal", exact=tmp / "run")
    began = time.perf_counter()
    start(plan(ROOT / "scenarios" / "deal.yaml", markets=["A"]), folder)
    print(f"deal.yaml market A simulated in {time.perf_counter() - began:.1f}s")
    with Ledger(folder.path) as ledger:
        posts = render_all(ledger.records())
    print(f"posts to make: {len(posts)} (simulated span {posts[-1].at / 3600:.0f} h)")

    if args.faults_only:
        faults(tmp, folder, args.retry_after)
        return
    stub = SlackStub().start()
    client = WebClient(token="xoxb-bench", base_url=stub.base_url)
    import threading

    stop = threading.Event()
    threading.Timer(args.window, stop.set).start()
    result = watch(folder.path, client, prefix="bench-", pace=1.0, stop=stop)
    calls = stub.calls("chat.postMessage")
    span = calls[-1].at - calls[0].at
    print(f"at Slack's pace (1/s per channel): {len(calls)} messages in {span:.1f}s "
          f"= {60 * (len(calls) - 1) / span:.1f} messages/minute")
    stub.stop()

    stub = SlackStub().start()
    client = WebClient(token="xoxb-bench", base_url=stub.base_url)
    fast = RunFolder.create(tmp, "deal2", exact=tmp / "run2")
    for name in ("scenario.yaml", "catalog.csv", "ledger.sqlite"):
        (fast.path / name).write_bytes((folder.path / name).read_bytes())
    result = watch(fast.path, client, prefix="bench-", pace=0.0)
    print(f"unpaced (bot + stub overhead): {result.sent} messages in {result.seconds:.1f}s "
          f"= {60 * result.sent / result.seconds:.0f} messages/minute")
    stub.stop()

    faults(tmp, folder, args.retry_after)
    ats = [p.at for p in posts]
    print("full market A, one channel, at 1 message/s:")
    for speed in (None, 60, 600, 3600, 36_000):
        seconds = finish_time(ats, speed, 1.0)
        label = "no --speed" if speed is None else f"--speed {speed}"
        print(f"  {label:>14}: {seconds / 60:7.1f} min ({seconds / 3600:.2f} h)")


if __name__ == "__main__":
    main()
