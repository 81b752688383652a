"""The Bolt app: ``/deal`` commands, the join and survey modals, approval and offer buttons.

Every listener acks first (Slack wants an answer within 3 seconds) and hands
the slow part (Web API calls, joins, settlement) to the bot's own worker pool:
Bolt's listener pool (5 threads) then only ever runs quick ack functions, so
acks do not queue behind slow work (``benchmarks/slack_ack.py``). Retried events are handled once (by ``event_id``), the
bot's own messages are ignored, user text is escaped, malformed commands get
usage help. HTTP mode verifies Slack's signatures (Bolt refuses missing,
wrong and stale ones); Socket Mode is the default.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from slack_bolt import App, BoltResponse
from slack_sdk import WebClient

from market.actions import Accept, Reject
from slackbot import blocks
from slackbot.commands import USAGE, Command, Usage, parse_command
from slackbot.escape import escape, safe
from slackbot.host import Host
from slackbot.modals import JOIN_CALLBACK, join_view, parse_join
from slackbot.survey import SURVEY_CALLBACK, parse_survey, store_answers, survey_view

log = logging.getLogger("slackbot.app")


def build_app(host: Host, client: WebClient, *, signing_secret: str | None = None, workers: int = 16) -> App:
    """The app around ``host``; with ``signing_secret`` every HTTP request must be signed."""
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="slackbot-work")

    def later(work: Callable[[], None]) -> None:
        """Run ``work`` after the ack, off Bolt's listener threads; failures go to the log."""
        def run() -> None:
            try:
                work()
            except Exception:
                log.exception("work after an ack failed")
        pool.submit(run)

    app = App(
        client=client,
        signing_secret=signing_secret or "unused-in-socket-mode",
        request_verification_enabled=signing_secret is not None,
        token_verification_enabled=False,
        ignoring_self_events_enabled=True,
    )
    admins = set(host.scenario.slack.admins)

    @app.middleware
    def once_per_event(body: dict[str, Any], next: Any) -> BoltResponse | None:
        event_id = body.get("event_id")
        if event_id and not host.store.first_time(str(event_id)):
            return BoltResponse(status=200, body="")  # a retry of an event already handled
        return next()

    @app.event("message")
    def on_message(event: dict[str, Any], say: Any) -> None:
        if event.get("bot_id") or event.get("subtype"):
            return  # our own posts (and edits, joins, ...) come back as events
        if event.get("channel_type") == "im":
            later(lambda: say(text=USAGE))

    @app.command("/deal")
    def on_command(ack: Any, command: dict[str, Any], respond: Any, client: WebClient) -> None:
        parsed = parse_command(command.get("text", ""))
        user = command["user_id"]
        if isinstance(parsed, Usage):
            ack(response_type="ephemeral", text=_usage(parsed))
            return
        if parsed.name == "admin" and user not in admins:
            ack(response_type="ephemeral", text="Sorry, only the week's admins can do that.")
            return
        ack()

        def run() -> None:
            try:
                _run_command(host, parsed, user, command, respond, client)
            except Exception as exc:  # the person gets a sentence, the log gets the details
                log.exception("command %s failed", parsed.name)
                respond(response_type="ephemeral", text=f"Something went wrong ({type(exc).__name__}).")

        later(run)

    @app.view(JOIN_CALLBACK)
    def on_join(ack: Any, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        form = parse_join(view["state"]["values"])
        if isinstance(form, dict):
            ack(response_action="errors", errors=form)
            return
        ack()
        user = body["user"]["id"]

        def run() -> None:
            name = _display_name(client, user)
            refusal = host.join(user, name, form, lambda text: host.dm(user, f"note:join:{user}", blocks.notice(
                safe(text))))
            if refusal:
                host.dm(user, f"note:join-refused:{user}", blocks.notice(safe(refusal)))

        later(run)

    @app.view(SURVEY_CALLBACK)
    def on_survey(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        answers = parse_survey(view["state"]["values"])
        if isinstance(answers, dict):
            ack(response_action="errors", errors=answers)
            return
        ack()
        user = body["user"]["id"]
        ratings, comment = answers

        def run() -> None:
            person = host.person(user)
            if person is None:
                return
            allowed = {d.id for d, _ in host.deals_of(user)}
            stored = store_answers(host.folder.path, person.market, person.participant_id, ratings, comment, allowed)
            host.dm(user, f"note:survey:{user}", blocks.notice(f"Thank you: {stored} answers stored."))

        later(run)

    def _button(action_id: str, approve: bool | None, offer_action: type | None) -> None:
        @app.action(action_id)
        def handler(ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any) -> None:
            ack()
            user = body["user"]["id"]
            value = str(action.get("value", ""))
            reply = _responder(respond)

            def run() -> None:
                if approve is not None:
                    refusal = host.decide_approval(user, value, approve, reply)
                else:
                    assert offer_action is not None
                    refusal = host.submit(user, offer_action(offer_id=value), reply)
                if refusal:
                    reply(refusal)

            later(run)

    _button("approve_deal", True, None)
    _button("decline_deal", False, None)
    _button("offer_accept", None, Accept)
    _button("offer_reject", None, Reject)

    @app.action("open_survey")
    def on_open_survey(ack: Any, body: dict[str, Any], client: WebClient) -> None:
        ack()
        user = body["user"]["id"]

        def run() -> None:
            person = host.person(user)
            deals = host.deals_of(user)
            if person and deals:
                client.views_open(trigger_id=body["trigger_id"], view=survey_view(person.market, deals))

        later(run)

    return app


def _usage(parsed: Usage) -> str:
    return f"{escape(parsed.problem)}\n{USAGE}" if parsed.problem else USAGE


def _responder(respond: Any) -> Any:
    def reply(text: str) -> None:
        try:
            respond(response_type="ephemeral", replace_original=False, text=safe(text))
        except Exception as exc:  # a lapsed response_url must not take the engine thread down
            log.warning("could not answer: %s", type(exc).__name__)
    return reply


def _display_name(client: WebClient, user: str) -> str:
    try:
        profile = client.users_info(user=user)["user"].get("profile", {})
        return str(profile.get("display_name") or profile.get("real_name") or user)
    except Exception:
        return user


def _run_command(host: Host, cmd: Command, user: str, command: dict[str, Any], respond: Any,
                 client: WebClient) -> None:
    reply = _responder(respond)
    if cmd.name == "join":
        if host.person(user):
            reply("You have already joined this week's market.")
        else:
            client.views_open(trigger_id=command["trigger_id"], view=join_view(host.market_name))
    elif cmd.name == "status":
        msg = host.status(user)
        if msg is None:
            reply("You have not joined yet: type `/deal join`.")
        else:
            respond(response_type="ephemeral", **msg)
    elif cmd.name == "survey":
        deals = host.deals_of(user)
        if not deals:
            reply("You have no deals to rate yet.")
        else:
            person = host.person(user)
            assert person is not None
            client.views_open(trigger_id=command["trigger_id"], view=survey_view(person.market, deals))
    elif cmd.name == "admin":
        ops = {"start": host.start, "resume": host.start, "pause": host.pause, "settle": host.settle,
               "export": host.export}
        reply(ops[cmd.arg]())
    else:
        assert cmd.action is not None
        refusal = host.submit(user, cmd.action, reply)
        if refusal:
            reply(refusal)


def serve(scenario: Path, client: WebClient, *, out: Path | None, speed: float, pace: float, http: bool,
          port: int) -> int:
    """Run the live week until interrupted (Socket Mode, or HTTP with signature checks)."""
    host = Host(scenario, client, out=out, speed=speed, pace=pace)
    log.info("hosting %s in %s (run folder %s)", host.scenario.name, host.market_name, host.folder.path)
    if http:
        secret = os.environ.get("SLACK_SIGNING_SECRET")
        if not secret:
            raise SystemExit("error: HTTP mode needs SLACK_SIGNING_SECRET in the environment")
        app = build_app(host, client, signing_secret=secret)
        try:
            app.start(port=port)
        finally:
            host.close()
        return 0
    app_token = os.environ.get("SLACK_APP_TOKEN")
    if not app_token:
        raise SystemExit("error: Socket Mode needs SLACK_APP_TOKEN (xapp-...) in the environment")
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    app = build_app(host, client)
    handler = SocketModeHandler(app, app_token)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    handler.connect()
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        handler.close()
        host.close()
    return 0
