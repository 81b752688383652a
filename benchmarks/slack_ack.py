"""How fast the Bolt app acks while slow work runs after the ack.

Signed ``/deal join`` commands (after the ack: ``views.open``) and join-modal
submissions (after the ack: ``users.info`` and the join) are dispatched into the
app, as Bolt's HTTP adapter would, against the local Web API stub answering every
call after ``--slow`` seconds. The ack time is how long ``App.dispatch`` takes to
return the ack. One sender in turn, then ``--burst`` senders at once.

    python benchmarks/slack_ack.py [--n 200] [--slow 0.5] [--burst 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from slack_sdk import WebClient  # noqa: E402

from slackbot.app import build_app  # noqa: E402
from slackbot.host import Host  # noqa: E402
from slackbot.modals import JOIN_CALLBACK, join_view  # noqa: E402
from tests.slackbot.conftest import SECRET, TOKEN, command_body, live_scenario, payload_body, signed_request  # noqa: E402
from tests.slackbot.live import join_values  # noqa: E402
from tests.slackbot.slack_stub import SlackStub  # noqa: E402


def timed(send: Callable[[int], int], n: int, senders: int) -> list[float]:
    """Seconds each of ``n`` requests took to be acked, ``senders`` at a time."""

    def one(i: int) -> float:
        start = time.perf_counter()
        status = send(i)
        took = time.perf_counter() - start
        assert status == 200, f"request {i} answered {status}"
        return took

    with ThreadPoolExecutor(senders) as pool:
        return list(pool.map(one, range(n)))


def report(label: str, times: list[float]) -> None:
    ms = sorted(t * 1000 for t in times)
    p95 = ms[min(len(ms) - 1, round(0.95 * len(ms)) - 1)]
    late = sum(t > 3000 for t in ms)
    print(f"{label:<44} n={len(ms):>4}  median {statistics.median(ms):7.1f} ms  p95 {p95:7.1f} ms  "
          f"max {ms[-1]:7.1f} ms  over 3 s: {late}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="requests per kind and mode")
    parser.add_argument("--slow", type=float, default=0.5, help="seconds every Web API call takes")
    parser.add_argument("--burst", type=int, default=20, help="concurrent senders in the burst")
    args = parser.parse_args()
    stub = SlackStub().start()
    stub.state.delay = args.slow
    client = WebClient(token=TOKEN, base_url=stub.base_url, timeout=30)
    with tempfile.TemporaryDirectory() as tmp:
        host = Host(live_scenario(Path(tmp)), client, out=Path(tmp) / "run", speed=1, pace=0)
        app = build_app(host, client, signing_secret=SECRET)
        view = {**join_view(host.market_name), "id": "V1", "callback_id": JOIN_CALLBACK}
        values = join_values("Desk lamp, $30, $5", "Kettle, $20", "autonomous")
        round_ = [0]

        def command(i: int) -> int:
            body = command_body("join", f"UCMD{round_[0]}x{i}", stub.respond_url + "bench")
            return app.dispatch(signed_request(body)).status

        def submission(i: int) -> int:
            payload = {"type": "view_submission", "user": {"id": f"UVIEW{round_[0]}x{i}"}, "team": {"id": "T1"},
                       "view": {**view, "state": {"values": values}}}
            return app.dispatch(signed_request(payload_body(payload))).status

        print(f"every Web API call takes {args.slow:g} s; ack = App.dispatch() returning the ack")
        started = time.perf_counter()
        for senders in (1, args.burst):
            round_[0] += 1
            report(f"/deal join, {senders} sender(s)", timed(command, args.n, senders))
            report(f"join modal submission, {senders} sender(s)", timed(submission, args.n, senders))
        expected = 4 * args.n
        while len(stub.calls("views.open")) + len(stub.calls("users.info")) < expected:
            time.sleep(0.05)
        print(f"slow work after the acks: all {expected} follow-up calls done "
              f"{time.perf_counter() - started:.1f} s after the first request")
        host.close()
    stub.stop()


if __name__ == "__main__":
    main()
