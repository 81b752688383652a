"""HTTP mode under load: 200 concurrent signed requests while 5 slow clients hold connections open.

The bot's HTTP mode (``slackbot.serve``: Bolt behind its ASGI app under uvicorn) listens on
127.0.0.1; the Web API stub answers every call after ``--slow`` seconds (a slow Slack, so work
after the ack is slow). Five clients open a connection, send half a request and then one byte
every half second, holding their connection for the whole run. Meanwhile ``--n`` clients, each
on its own connection, send a signed ``/deal status`` (acked at once, answered later through
the response_url) all at the same moment. Printed: ack time median / p99 / max, requests over
3 s, connections dropped or refused. The same load against Bolt's development server
(``App.start``, what HTTP mode ran before) in the same process is the baseline.

    python benchmarks/slack_http.py [--n 200] [--slow 0.5] [--no-baseline]
"""

from __future__ import annotations

import argparse
import http.client
import socket
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from slack_sdk import WebClient  # noqa: E402
from slack_sdk.signature import SignatureVerifier  # noqa: E402

from slackbot.app import build_app  # noqa: E402
from slackbot.host import Host  # noqa: E402
from slackbot.serve import SlackAsgi, http_server  # noqa: E402
from tests.slackbot.conftest import SECRET, TOKEN, command_body, live_scenario  # noqa: E402
from tests.slackbot.slack_stub import SlackStub  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def slow_client(port: int, stop: threading.Event, dropped: list[str]) -> None:
    """Half a request, then a byte every 0.5 s until ``stop``: holds one connection open."""
    try:
        conn = socket.create_connection(("127.0.0.1", port), timeout=10)
        conn.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                     b"Content-Length: 100000\r\n\r\n")
        while not stop.wait(0.5):
            conn.sendall(b"a")
        conn.close()
    except OSError as exc:
        dropped.append(f"slow client: {type(exc).__name__}")


def one_request(port: int, i: int, respond_url: str, errors: list[str]) -> float | None:
    body = command_body("status", f"UB{i}", respond_url)
    ts = str(int(time.time()))
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": ts,
               "X-Slack-Signature": SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body)}
    start = time.perf_counter()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", "/slack/events", body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        conn.close()
        if response.status != 200:
            errors.append(f"HTTP {response.status}")
            return None
    except OSError as exc:
        errors.append(type(exc).__name__)
        return None
    return time.perf_counter() - start


def load(port: int, n: int, respond_url: str) -> tuple[list[float], list[str]]:
    stop = threading.Event()
    errors: list[str] = []
    slow = [threading.Thread(target=slow_client, args=(port, stop, errors)) for _ in range(5)]
    for t in slow:
        t.start()
    time.sleep(0.5)  # the slow clients are connected (benchmark pacing, not a test)
    barrier = threading.Barrier(n)

    def go(i: int) -> float | None:
        barrier.wait()
        return one_request(port, i, respond_url, errors)

    with ThreadPoolExecutor(n) as pool:
        times = [t for t in pool.map(go, range(n)) if t is not None]
    stop.set()
    for t in slow:
        t.join()
    return times, errors


def report(label: str, times: list[float], errors: list[str], n: int) -> None:
    if not times:
        print(f"{label:<34} no request acked; errors: {sorted(set(errors))[:3]}")
        return
    ms = sorted(t * 1000 for t in times)
    p99 = ms[min(len(ms) - 1, round(0.99 * len(ms)) - 1)]
    print(f"{label:<34} acked {len(ms):>3}/{n}  median {statistics.median(ms):7.1f} ms  p99 {p99:7.1f} ms  "
          f"max {ms[-1]:7.1f} ms  over 3 s: {sum(t > 3000 for t in ms)}  dropped/refused: {len(errors)}"
          + (f" ({', '.join(sorted(set(errors)))})" if errors else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--slow", type=float, default=0.5, help="seconds every Web API call takes")
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()
    stub = SlackStub().start()
    stub.state.delay = args.slow
    client = WebClient(token=TOKEN, base_url=stub.base_url, timeout=30)
    print(f"{args.n} concurrent signed /deal status + 5 slow clients; every Web API call takes {args.slow:g} s")
    with tempfile.TemporaryDirectory() as tmp:
        host = Host(live_scenario(Path(tmp)), client, out=Path(tmp) / "run", speed=1, pace=0)
        app = build_app(host, client, signing_secret=SECRET)
        port = free_port()
        asgi = SlackAsgi(app, host)
        server = http_server(asgi, "127.0.0.1", port)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        times, errors = load(port, args.n, stub.respond_url + "bench")
        report("uvicorn (slackbot.serve)", times, errors, args.n)
        server.should_exit = True
        thread.join(30)
        asgi.close()
        if not args.no_baseline:
            from slack_bolt.app.app import SlackAppDevelopmentServer

            port = free_port()
            dev = SlackAppDevelopmentServer(port=port, path="/slack/events", app=app)
            dev_thread = threading.Thread(target=dev._server.serve_forever, daemon=True)
            dev_thread.start()
            times, errors = load(port, args.n, stub.respond_url + "bench")
            report("Bolt development server (before)", times, errors, args.n)
            dev._server.shutdown()
        host.close(flush=0)
    stub.stop()


if __name__ == "__main__":
    main()
