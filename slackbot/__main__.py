"""Command line: ``python -m slackbot watch RUN_DIR`` and ``python -m slackbot host SCENARIO.yaml``.

Tokens come from the environment, never from arguments: ``SLACK_BOT_TOKEN``
(xoxb-...), ``SLACK_APP_TOKEN`` (xapp-..., Socket Mode) and, for HTTP mode,
``SLACK_SIGNING_SECRET``. ``SLACK_API_URL`` points the client elsewhere (a
local stub of the Web API).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

from slackbot.logs import install_redaction


def _client():  # type: ignore[no-untyped-def]
    from slack_sdk import WebClient

    token = os.environ.get("SLACK_BOT_TOKEN", "")
    if not token:
        raise SystemExit("error: set SLACK_BOT_TOKEN (the bot token, xoxb-...) in the environment")
    base = os.environ.get("SLACK_API_URL")
    return WebClient(token=token, **({"base_url": base} if base else {}))


def _number(low: float, high: float, low_open: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number from ``low`` (excluded when ``low_open``) to ``high``."""
    def parse(text: str) -> float:
        try:
            value = float(text[:40])
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text[:40]!r}") from None
        if not math.isfinite(value) or value < low or (low_open and value == low) or value > high:
            span = f"above {low:g} and at most {high:,.0f}" if low_open else f"from {low:g} to {high:,.0f}"
            raise argparse.ArgumentTypeError(f"a number {span}, got {text[:40]}")
        return value
    return parse


def _port(text: str) -> int:
    """An argparse type: a TCP port, 1 to 65535."""
    if not re.fullmatch(r"\d{1,5}", text) or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 1 to 65535, got {text[:40]!r}")
    return int(text)


def _channel_prefix(text: str) -> str:
    """An argparse type: a channel name's start, as the scenario's ``slack.channel_prefix`` allows it."""
    if not re.fullmatch(r"[a-z0-9_-]{0,40}", text):
        raise argparse.ArgumentTypeError(f"lowercase letters, digits, - and _, at most 40, got {text[:40]!r}")
    return text


def _markets(text: str) -> list[str]:
    """An argparse type: comma-separated market names (as a scenario names them)."""
    names = [name.strip() for name in text.split(",")]
    if len(names) > 100 or not all(re.fullmatch(r"[A-Za-z0-9_-]{1,100}", name) for name in names):
        raise argparse.ArgumentTypeError(f"comma-separated market names (letters, digits, - and _), got {text[:80]!r}")
    return names


SPEED = _number(0, 10**7, low_open=True)
"""Simulated seconds per real second: a year in about three seconds at most."""
PACE = _number(0, 3600)
"""Seconds between messages per channel."""


def main(argv: list[str] | None = None, prog: str = "python -m slackbot") -> int:
    """Run the command line on ``argv`` (``prog``: what its usage line calls it, e.g. ``market slack``)."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("watch", help="post a finished or running run into Slack")
    w.add_argument("run_dir", type=Path)
    w.add_argument("--channel-prefix", type=_channel_prefix, default="deal-")
    w.add_argument("--speed", type=SPEED, default=None, help="simulated seconds per real second (default: no waiting)")
    w.add_argument("--pace", type=PACE, default=1.0, help="seconds between messages per channel (Slack: 1)")
    w.add_argument("--markets", type=_markets, default=None, help="comma-separated markets (default: all)")
    w.add_argument("--no-follow", action="store_true", help="do not wait for a running run to finish")
    h = sub.add_parser("host", help="host a live trading week in Slack")
    h.add_argument("scenario", type=Path)
    h.add_argument("--out", type=Path, default=None, help="run folder (an existing one resumes the week)")
    h.add_argument("--speed", type=SPEED, default=1.0, help="simulated seconds per real second")
    h.add_argument("--pace", type=PACE, default=1.0, help="seconds between messages per channel (Slack: 1)")
    h.add_argument("--http", action="store_true",
                   help="HTTP mode (uvicorn) with SLACK_SIGNING_SECRET instead of Socket Mode")
    h.add_argument("--host", dest="bind", default="0.0.0.0", help="HTTP mode: address to listen on")
    h.add_argument("--port", type=_port, default=3000, help="HTTP mode: port to listen on")
    h.add_argument("--admin", action="append", default=[], metavar="USER_ID",
                   help="a Slack user id who may run the week (repeatable; adds to the scenario's slack.admins)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_redaction()
    if args.command == "watch":
        from slackbot.watch import watch

        result = watch(args.run_dir, _client(), prefix=args.channel_prefix, speed=args.speed, pace=args.pace,
                       follow=not args.no_follow, markets=args.markets)
        print(f"{result.sent} posted, {result.skipped} already posted, {len(result.failed)} failed "
              f"in {result.seconds:.1f}s")
        return 1 if result.failed else 0
    from slackbot.serve import serve

    for admin in args.admin:
        if not re.fullmatch(r"[UW][A-Z0-9]+", admin):
            parser.error(f"--admin {admin[:40]!r}: a Slack user id looks like U012AB3CD")
    return serve(args.scenario, _client(), out=args.out, speed=args.speed, pace=args.pace,
                 http=args.http, host_name=args.bind, port=args.port, admins=args.admin)


if __name__ == "__main__":
    sys.exit(main())
