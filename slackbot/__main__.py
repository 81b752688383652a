"""Command line: ``python -m slackbot watch RUN_DIR`` and ``python -m slackbot host SCENARIO.yaml``
(also ``market slack watch|host``: the same typer app, mounted).

Tokens come from the environment, never from arguments: ``SLACK_BOT_TOKEN``
(xoxb-...), ``SLACK_APP_TOKEN`` (xapp-..., Socket Mode) and, for HTTP mode,
``SLACK_SIGNING_SECRET``. ``SLACK_API_URL`` points the client elsewhere (a
local stub of the Web API). Bad input (an option out of range, a folder that is
not a run, a token not set) exits 2 with one line naming it, before anything is
posted.
"""

from __future__ import annotations

import logging
import math
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from slackbot.logs import install_redaction

BOT_TOKEN = ("SLACK_BOT_TOKEN", "the bot token, xoxb-...")
APP_TOKEN = ("SLACK_APP_TOKEN", "the app-level token for Socket Mode, xapp-...")
SIGNING_SECRET = ("SLACK_SIGNING_SECRET", "the app's signing secret, for --http")


def _fail(message: str) -> None:
    """Bad input: one line on stderr, exit 2 (as every ``market`` subcommand)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _require(*tokens: tuple[str, str]) -> None:
    """Every token in ``tokens`` is set in the environment, or exit 2 naming the ones that are not."""
    missing = [f"{name} ({what})" for name, what in tokens if not os.environ.get(name)]
    if missing:
        _fail(f"set {' and '.join(missing)} in the environment; tokens are never taken as options")


def _client() -> Any:
    """The Web API client (``slack_sdk.WebClient``) on ``SLACK_BOT_TOKEN`` (and ``SLACK_API_URL`` if set)."""
    from slack_sdk import WebClient

    _require(BOT_TOKEN)
    base = os.environ.get("SLACK_API_URL")
    return WebClient(token=os.environ["SLACK_BOT_TOKEN"], **({"base_url": base} if base else {}))


def _number(low: float, high: float, low_open: bool = False) -> Callable[[str], float]:
    """An option parser: a finite number from ``low`` (excluded when ``low_open``) to ``high``."""
    def parse(given: str | float) -> float:
        text = str(given)  # typer passes the default through the parser too
        try:
            value = float(text[:40])
        except ValueError:
            raise typer.BadParameter(f"not a number: {text[:40]!r}") from None
        if not math.isfinite(value) or value < low or (low_open and value == low) or value > high:
            span = f"above {low:g} and at most {high:,.0f}" if low_open else f"from {low:g} to {high:,.0f}"
            raise typer.BadParameter(f"a number {span}, got {text[:40]}")
        return value
    return parse


def _port(given: str | int) -> int:
    """An option parser: a TCP port, 1 to 65535."""
    text = str(given)
    if not re.fullmatch(r"\d{1,5}", text) or not 1 <= int(text) <= 65535:
        raise typer.BadParameter(f"a port is 1 to 65535, got {text[:40]!r}")
    return int(text)


def _channel_prefix(text: str) -> str:
    """An option parser: a channel name's start, as the scenario's ``slack.channel_prefix`` allows it."""
    if not re.fullmatch(r"[a-z0-9_-]{0,40}", text):
        raise typer.BadParameter(f"lowercase letters, digits, - and _, at most 40, got {text[:40]!r}")
    return text


def _markets(text: str) -> list[str]:
    """An option parser: comma-separated market names (as a scenario names them)."""
    names = [name.strip() for name in text.split(",")]
    if len(names) > 100 or not all(re.fullmatch(r"[A-Za-z0-9_-]{1,100}", name) for name in names):
        raise typer.BadParameter(f"comma-separated market names (letters, digits, - and _), got {text[:80]!r}")
    return names


def _admin(text: str) -> str:
    """An option parser: a Slack user id."""
    if not re.fullmatch(r"[UW][A-Z0-9]{1,40}", text):
        raise typer.BadParameter(f"a Slack user id looks like U012AB3CD, got {text[:40]!r}")
    return text


SPEED = _number(0, 10**7, low_open=True)
"""Simulated seconds per real second: a year in about three seconds at most."""
PACE = _number(0, 3600)
"""Seconds between messages per channel."""


def _logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_redaction()


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True,
                  context_settings={"help_option_names": ["-h", "--help"]})

Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="log every Slack call (tokens redacted)")]
Pace = Annotated[float, typer.Option(parser=PACE, metavar="SECONDS",
                                     help="seconds between messages per channel, 0 to 3600 (Slack allows 1)")]


@app.callback()
def slack() -> None:
    """Post a run into Slack (watch), or host a live trading week there (host).

    Tokens come from the environment, never from options (each command's -h says which ones it needs).
    """


@app.command()
def watch(
    run_dir: Annotated[Path, typer.Argument(help="a run folder, finished or still running")],
    channel_prefix: Annotated[str, typer.Option("--channel-prefix", parser=_channel_prefix, metavar="TEXT",
                                                help="start of each market's channel name")] = "deal-",
    speed: Annotated[float | None, typer.Option(parser=SPEED, metavar="X",
                                                help="simulated seconds per real second (default: no waiting)")
                     ] = None,
    pace: Pace = 1.0,
    markets: Annotated[list[str] | None, typer.Option(parser=_markets, metavar="A,B",
                                                      help="comma-separated markets (default: all)")] = None,
    no_follow: Annotated[bool, typer.Option("--no-follow", help="do not wait for a running run to finish")] = False,
    verbose: Verbose = False,
) -> None:
    """Post RUN_DIR into Slack: a channel per market, every event once, in order (a restart skips what is posted).

    Needs SLACK_BOT_TOKEN in the environment. Exit 0 when every post went out, 1 when some could not be posted.
    """
    from running.runfolder import RunFolder, RunFolderError
    from slackbot.watch import watch as post_run

    try:
        RunFolder.open(run_dir)
    except RunFolderError as exc:
        _fail(str(exc))
    client = _client()
    _logging(verbose)
    # typer hands a list option's parser each value; --markets is one comma-separated value
    chosen = [name for group in markets for name in group] if markets else None
    result = post_run(run_dir, client, prefix=channel_prefix, speed=speed, pace=pace,
                      follow=not no_follow, markets=chosen)
    typer.echo(f"{result.sent} posted, {result.skipped} already posted, {len(result.failed)} failed "
               f"in {result.seconds:.1f}s")
    if result.failed:
        raise typer.Exit(1)


@app.command()
def host(
    scenario: Annotated[Path, typer.Argument(help="the scenario file of the week")],
    out: Annotated[Path | None, typer.Option(help="run folder (an existing one resumes the week)")] = None,
    speed: Annotated[float, typer.Option(parser=SPEED, metavar="X", help="simulated seconds per real second")
                     ] = 1.0,
    pace: Pace = 1.0,
    http: Annotated[bool, typer.Option("--http", help="HTTP mode (uvicorn) with SLACK_SIGNING_SECRET instead of "
                                                      "Socket Mode")] = False,
    bind: Annotated[str, typer.Option("--host", metavar="ADDRESS", help="HTTP mode: address to listen on")
                    ] = "0.0.0.0",
    port: Annotated[int, typer.Option(parser=_port, metavar="PORT", help="HTTP mode: port to listen on")] = 3000,
    admin: Annotated[list[str] | None, typer.Option(
        parser=_admin, metavar="USER_ID",
        help="a Slack user id who may run the week (repeatable; adds to the scenario's slack.admins)")] = None,
    verbose: Verbose = False,
) -> None:
    """Host a live trading week for SCENARIO in Slack: people join, list, offer and approve deals there.

    Needs SLACK_BOT_TOKEN and, in Socket Mode, SLACK_APP_TOKEN; with --http, SLACK_SIGNING_SECRET.
    """
    from slackbot.serve import serve

    if not scenario.is_file():
        _fail(f"{scenario}: no such scenario file")
    _require(BOT_TOKEN, SIGNING_SECRET if http else APP_TOKEN)
    client = _client()
    _logging(verbose)
    code = serve(scenario, client, out=out, speed=speed, pace=pace, http=http, host_name=bind, port=port,
                 admins=list(admin or ()))
    raise typer.Exit(code)


def main(argv: list[str] | None = None, prog: str = "python -m slackbot") -> int:
    """Run the command line on ``argv`` (default: ``sys.argv``); returns its exit code."""
    try:
        app(args=argv, prog_name=prog, standalone_mode=True)
    except SystemExit as stopped:
        return stopped.code if isinstance(stopped.code, int) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
