"""Command line: ``python -m slackbot watch RUN_DIR`` and ``python -m slackbot host SCENARIO.yaml``.

Tokens come from the environment, never from arguments: ``SLACK_BOT_TOKEN``
(xoxb-...), ``SLACK_APP_TOKEN`` (xapp-..., Socket Mode) and, for HTTP mode,
``SLACK_SIGNING_SECRET``. ``SLACK_API_URL`` points the client elsewhere (a
local stub of the Web API).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from slackbot.logs import install_redaction


def _client():  # type: ignore[no-untyped-def]
    from slack_sdk import WebClient

    token = os.environ.get("SLACK_BOT_TOKEN", "")
    if not token:
        raise SystemExit("error: set SLACK_BOT_TOKEN (the bot token, xoxb-...) in the environment")
    base = os.environ.get("SLACK_API_URL")
    return WebClient(token=token, **({"base_url": base} if base else {}))


def main(argv: list[str] | None = None, prog: str = "python -m slackbot") -> int:
    """Run the command line on ``argv`` (``prog``: what its usage line calls it, e.g. ``market slack``)."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("watch", help="post a finished or running run into Slack")
    w.add_argument("run_dir", type=Path)
    w.add_argument("--channel-prefix", default="deal-")
    w.add_argument("--speed", type=float, default=None, help="simulated seconds per real second (default: no waiting)")
    w.add_argument("--pace", type=float, default=1.0, help="seconds between messages per channel (Slack: 1)")
    w.add_argument("--markets", default=None, help="comma-separated markets (default: all)")
    w.add_argument("--no-follow", action="store_true", help="do not wait for a running run to finish")
    h = sub.add_parser("host", help="host a live trading week in Slack")
    h.add_argument("scenario", type=Path)
    h.add_argument("--out", type=Path, default=None, help="run folder (an existing one resumes the week)")
    h.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second")
    h.add_argument("--pace", type=float, default=1.0)
    h.add_argument("--http", action="store_true",
                   help="HTTP mode (uvicorn) with SLACK_SIGNING_SECRET instead of Socket Mode")
    h.add_argument("--host", dest="bind", default="0.0.0.0", help="HTTP mode: address to listen on")
    h.add_argument("--port", type=int, default=3000, help="HTTP mode: port to listen on")
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
                       follow=not args.no_follow, markets=args.markets.split(",") if args.markets else None)
        print(f"{result.sent} posted, {result.skipped} already posted, {len(result.failed)} failed "
              f"in {result.seconds:.1f}s")
        return 1 if result.failed else 0
    import re

    from slackbot.serve import serve

    for admin in args.admin:
        if not re.fullmatch(r"[UW][A-Z0-9]+", admin):
            parser.error(f"--admin {admin[:40]!r}: a Slack user id looks like U012AB3CD")
    return serve(args.scenario, _client(), out=args.out, speed=args.speed, pace=args.pace,
                 http=args.http, host_name=args.bind, port=args.port, admins=args.admin)


if __name__ == "__main__":
    sys.exit(main())
