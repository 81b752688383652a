"""The Bolt app: ``/deal`` commands, the join and survey modals, buttons, thread replies, App Home.

``DealHandler`` holds every listener as a method; ``build_app`` registers them
with Bolt's plain-call form (``app.command("/deal")(handler.deal)``). Every
listener acks first (Slack wants an answer within 3 seconds) and hands the
slow part to the handler's own worker pool, closed with ``DealHandler.close``:
Bolt's listener threads only ever run quick ack functions
(``benchmarks/slack_ack.py``). Retried events are handled once (by
``event_id``), the bot's own messages are ignored, every string from a person
is escaped (``blocks``/``escape``), malformed commands get usage help.
Messages go out through the host's outbox; only ``views.open`` (bound to a
trigger that lives 3 seconds) is called directly, retried within that time
or answered with a clear "try again".
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from slack_bolt import App, BoltResponse
from slack_sdk import WebClient

from market.actions import MAX_ID, Accept, MakeOffer, Reject
from market.money import MAX_CENTS, format_money
from slackbot import blocks
from slackbot.commands import USAGE, Command, Usage, parse_command
from slackbot.escape import cut, entry, escape, safe
from slackbot.host import Host
from slackbot.modals import JOIN_CALLBACK, join_view, parse_join
from slackbot.survey import SURVEY_CALLBACK, parse_survey, store_answers, survey_view
from slackbot.webapi import Permanent, classify

log = logging.getLogger("slackbot.app")
TRIGGER_LIFETIME = 3.0  # seconds a trigger_id is valid for views.open
TRY_AGAIN = "Slack was too busy to open the form in time. Please type `/deal {what}` again."
Reply = Callable[[str], None]


def open_view(client: WebClient, trigger_id: str, view: dict[str, Any], received: float,
              lifetime: float = TRIGGER_LIFETIME) -> bool:
    """``views.open`` retried (429 ``Retry-After``, transient errors) while the trigger still lives.

    ``received`` is when the trigger arrived (``time.monotonic()``); False when the form could not open
    in time (the caller tells the person to try again).
    """
    deadline = received + lifetime - 0.1
    while True:
        try:
            client.views_open(trigger_id=trigger_id, view=view)
            return True
        except Exception as exc:
            verdict = classify("views.open", exc)
            if isinstance(verdict, Permanent):
                log.warning("views.open refused: %s", verdict.error)
                return False
            wait = verdict.wait if verdict.wait is not None else 0.2
            if time.monotonic() + wait >= deadline:
                log.info("views.open: the trigger would lapse before Slack lets us retry")
                return False
            time.sleep(wait)


class DealHandler:
    """Every listener of the app, as methods; ``close`` waits for work in flight and stops the pool."""

    def __init__(self, host: Host, client: WebClient, *, workers: int = 16) -> None:
        self.host = host
        self.client = client
        self.admins = set(host.admins)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="slackbot-work")

    def close(self) -> None:
        """Finish the work already handed over (it persists what it did), then stop the pool."""
        self.pool.shutdown(wait=True, cancel_futures=False)

    def later(self, work: Callable[[], None]) -> None:
        """Run ``work`` after the ack, off Bolt's listener threads; failures go to the log."""
        def run() -> None:
            try:
                work()
            except Exception:
                log.exception("work after an ack failed")
        try:
            self.pool.submit(run)
        except RuntimeError:  # shutting down: Slack will see the ack, the work is refused
            log.warning("shutting down: work after an ack was dropped")

    # --- middleware ------------------------------------------------------------------------------
    def once_per_event(self, body: dict[str, Any], next: Any) -> BoltResponse | None:
        event_id = body.get("event_id")
        if event_id and not self.host.store.first_time(str(event_id)):
            return BoltResponse(status=200, body="")  # a retry of an event already handled
        return next()

    # --- events -------------------------------------------------------------------------------------
    def message(self, event: dict[str, Any]) -> None:
        if event.get("bot_id") or event.get("subtype"):
            return  # our own posts (and edits, joins, ...) come back as events
        channel, ts, user = str(event.get("channel", "")), str(event.get("ts", "")), event.get("user")
        if event.get("channel_type") == "im":
            if user and self.host.interviewer is not None and self.host.interviewing(str(user)):
                text = entry(str(event.get("text", "")))[:4000]
                self.later(lambda: self.host.interview_answer(str(user), text))
            else:
                self.later(lambda: self.host.say(channel, f"usage:{channel}:{ts}", blocks.trusted(USAGE)))
            return
        thread_ts = event.get("thread_ts")
        if thread_ts and user and thread_ts != ts:
            text = entry(str(event.get("text", "")))[:4000]
            self.later(lambda: self.host.thread_reply(str(user), channel, str(thread_ts), ts, text))

    def app_home(self, event: dict[str, Any]) -> None:
        user = str(event.get("user", ""))

        def run() -> None:
            msg = self.host.market_view(user)
            self.host.api.call("views.publish", user_id=user, view={"type": "home", "blocks": msg["blocks"]})

        self.later(run)

    def ignore(self, ack: Any) -> None:
        """Events and actions the bot does not act on are acknowledged (Slack would deliver them again)."""
        ack()

    # --- /deal ----------------------------------------------------------------------------------------
    def deal(self, ack: Any, command: dict[str, Any], respond: Any) -> None:
        received = time.monotonic()
        parsed = parse_command(command.get("text", ""))
        user = command["user_id"]
        if isinstance(parsed, Usage):
            ack(response_type="ephemeral", text=_usage(parsed))
            return
        if parsed.name == "admin" and user not in self.admins:
            ack(response_type="ephemeral", text="Sorry, only the week's admins can do that.")
            return
        ack()

        def run() -> None:
            try:
                self._run(parsed, user, command, respond, received)
            except Exception as exc:  # the person gets a sentence, the log gets the details
                log.exception("command %s failed", parsed.name)
                respond(response_type="ephemeral", text=f"Something went wrong ({type(exc).__name__}).")

        self.later(run)

    def _run(self, cmd: Command, user: str, command: dict[str, Any], respond: Any, received: float) -> None:
        host, reply = self.host, _responder(respond)
        if cmd.name == "join":
            if host.person(user):
                reply("You have already joined this week's market.")
            elif (host.interviewer is not None and host.interview_form(user) is None and \
                    host.store.get(f"interview:{user}") is None) or host.interviewing(user):
                reply(host.start_interview(user))
            elif not open_view(self.client, command["trigger_id"], join_view(host.market_name), received):
                reply(TRY_AGAIN.format(what="join"))
        elif cmd.name == "status":
            msg = host.status(user)
            if msg is None:
                reply("You have not joined yet: type `/deal join`.")
            else:
                respond(response_type="ephemeral", **msg)
        elif cmd.name == "market":
            respond(response_type="ephemeral", **host.market_view(user))
        elif cmd.name == "survey":
            deals = host.deals_of(user)
            person = host.person(user)
            if not deals or person is None:
                reply("You have no deals to rate yet.")
            elif not open_view(self.client, command["trigger_id"], survey_view(person.market, deals), received):
                reply(TRY_AGAIN.format(what="survey"))
        elif cmd.name == "admin":
            ops = {"start": host.start, "resume": host.start, "pause": host.pause, "settle": host.settle,
                   "export": host.export, "pending": host.pending, "resend": host.resend}
            respond(response_type="ephemeral", **blocks.trusted(ops[cmd.arg]()))
        else:
            assert cmd.action is not None
            refusal = host.submit(user, cmd.action, reply)
            if refusal:
                reply(refusal)

    # --- modals ----------------------------------------------------------------------------------------
    def join_submitted(self, ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        user = _user_id(body)
        form = parse_join(_state_values(view))
        if isinstance(form, dict):
            ack(response_action="errors", errors={k: v[:150] for k, v in form.items()})
            return
        ack()
        if user is None:
            return

        def run() -> None:
            name = _display_name(self.host, user)
            refusal = self.host.join(user, name, form,
                                     lambda text: self.host.dm(user, f"note:join:{user}", blocks.notice(text)))
            if refusal:
                self.host.dm(user, f"note:join-refused:{user}", blocks.notice(refusal))

        self.later(run)

    def survey_submitted(self, ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        user = _user_id(body)
        answers = parse_survey(_state_values(view))
        if isinstance(answers, dict):
            ack(response_action="errors", errors=answers)
            return
        ack()
        if user is None:
            return
        ratings, comment = answers

        def run() -> None:
            person = self.host.person(user)
            if person is None:
                return
            allowed = {d.id for d, _ in self.host.deals_of(user)}
            stored = store_answers(self.host.folder.path, person.market, person.participant_id, ratings, comment,
                                   allowed)
            self.host.dm(user, f"note:survey:{user}", blocks.notice(f"Thank you: {stored} answers stored."))

        self.later(run)

    # --- buttons ---------------------------------------------------------------------------------------
    def _click(self, ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any,
               work: Callable[[str, str, Reply], str | None]) -> None:
        ack()
        user, value, reply = _user_id(body), str(action.get("value", ""))[:2000], _responder(respond)
        if user is None:
            return

        def run() -> None:
            refusal = work(user, value, reply)
            if refusal:
                reply(refusal)

        self.later(run)

    def approve(self, ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any) -> None:
        self._click(ack, body, action, respond, lambda u, v, r: self.host.decide_approval(u, v, True, r))

    def decline(self, ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any) -> None:
        self._click(ack, body, action, respond, lambda u, v, r: self.host.decide_approval(u, v, False, r))

    def accept_offer(self, ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any) -> None:
        self._click(ack, body, action, respond, lambda u, v, r: self.host.submit(u, Accept(offer_id=v), r))

    def reject_offer(self, ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any) -> None:
        self._click(ack, body, action, respond, lambda u, v, r: self.host.submit(u, Reject(offer_id=v), r))

    def make_offer(self, ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any) -> None:
        def work(user: str, value: str, reply: Reply) -> str | None:
            listing, _, amount = value.partition("|")
            digits = amount.lstrip("0")
            if not listing or len(listing) > MAX_ID or not (amount.isascii() and amount.isdigit()) or not digits:
                return "That button is broken; use `/deal offer LISTING PRICE`."
            if len(digits) > len(str(MAX_CENTS)) or int(digits) > MAX_CENTS:
                return f"That offer is more than the most allowed, {format_money(MAX_CENTS)}."
            return self.host.submit(user, MakeOffer(listing_id=listing, amount=int(digits)), reply)

        self._click(ack, body, action, respond, work)

    def interview_review(self, ack: Any, body: dict[str, Any], respond: Any) -> None:
        """Open the join form filled in with the mandate the interview extracted."""
        received = time.monotonic()
        ack()
        user = _user_id(body)
        if user is None:
            return

        def run() -> None:
            form = self.host.interview_form(user)
            view = join_view(self.host.market_name, initial=form)
            if not open_view(self.client, body["trigger_id"], view, received):
                _responder(respond)("Slack was too busy to open the form in time. Please click again.")

        self.later(run)

    def open_survey(self, ack: Any, body: dict[str, Any]) -> None:
        received = time.monotonic()
        ack()
        user = _user_id(body)
        if user is None:
            return

        def run() -> None:
            person = self.host.person(user)
            deals = self.host.deals_of(user)
            if person and deals and not open_view(self.client, body["trigger_id"],
                                                  survey_view(person.market, deals), received):
                self.host.dm(user, f"note:survey-busy:{user}:{int(received)}",
                             blocks.notice(TRY_AGAIN.format(what="survey")))

        self.later(run)


def build_app(host: Host, client: WebClient, *, signing_secret: str | None = None, workers: int = 16,
              handler: DealHandler | None = None) -> App:
    """The app around ``host``; with ``signing_secret`` every HTTP request must be signed."""
    handler = handler or DealHandler(host, client, workers=workers)
    app = App(
        client=client,
        signing_secret=signing_secret or "unused-in-socket-mode",
        request_verification_enabled=signing_secret is not None,
        token_verification_enabled=False,
        ignoring_self_events_enabled=True,
    )
    app.middleware(handler.once_per_event)
    app.event("message")(handler.message)
    app.event("app_home_opened")(handler.app_home)
    app.command("/deal")(handler.deal)
    app.view(JOIN_CALLBACK)(handler.join_submitted)
    app.view(SURVEY_CALLBACK)(handler.survey_submitted)
    app.action("approve_deal")(handler.approve)
    app.action("decline_deal")(handler.decline)
    app.action("offer_accept")(handler.accept_offer)
    app.action("offer_reject")(handler.reject_offer)
    app.action("make_offer")(handler.make_offer)
    app.action("open_survey")(handler.open_survey)
    app.action("interview_review")(handler.interview_review)
    # last: whatever no listener above takes is still acknowledged, so Slack does not deliver it again
    app.event(re.compile(".*"))(handler.ignore)
    app.action(re.compile(".*"))(handler.ignore)
    return app


def _usage(parsed: Usage) -> str:
    return f"{escape(parsed.problem)}\n{USAGE}" if parsed.problem else USAGE


def _responder(respond: Any) -> Reply:
    def reply(text: str) -> None:
        try:
            respond(response_type="ephemeral", replace_original=False, text=safe(text))
        except Exception as exc:  # a lapsed response_url must not take the engine thread down
            log.warning("could not answer: %s", type(exc).__name__)
    return reply


def _user_id(body: dict[str, Any]) -> str | None:
    """Who sent a payload (``user.id``), or None when the payload does not say in Slack's shape."""
    user = body.get("user")
    user_id = user.get("id") if isinstance(user, dict) else None
    return user_id if isinstance(user_id, str) and user_id else None


def _state_values(view: Any) -> Any:
    """A view submission's ``state.values`` (the parsers refuse anything but an object)."""
    state = view.get("state") if isinstance(view, dict) else None
    return state.get("values") if isinstance(state, dict) else None


def _display_name(host: Host, user: str) -> str:
    try:
        profile = host.api.call("users.info", user=user)["user"].get("profile", {})
        return cut(entry(str(profile.get("display_name") or profile.get("real_name") or user), lines=False), 80)
    except Exception:
        return user


def admins_note(admins: Sequence[str]) -> str | None:
    """What to say at start when no one can run the week."""
    if admins:
        return None
    return ("No admins: nobody can start, pause or settle this week. Give them in the scenario "
            "(slack.admins) or on the command line (--admin U123).")
