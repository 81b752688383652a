"""The Bolt app: ``/deal`` commands, the join and survey modals, buttons, thread replies, App Home.

``DealHandler`` holds every listener as methods; ``build_app`` registers them with Bolt's lazy
listeners (``app.command("/deal")(ack=handler.deal_ack, lazy=[handler.deal])``): the ack function
answers Slack at once (it wants an answer within 3 seconds) on the thread that received the request,
and Bolt runs the slow part afterwards on the handler's pool (``listener_executor``), which
``DealHandler.close`` drains; ack functions never wait for slow work (``benchmarks/slack_ack.py``).
Retried events are handled once (by ``event_id``), the bot's own messages are ignored, every string
from a person is escaped (``blocks``/``escape``), malformed commands get usage help.
Messages go out through the host's outbox; only ``views.open`` (bound to a trigger that lives 3
seconds from when the request arrived) is called directly, retried within that time or answered with
a clear "try again".
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from slack_bolt import App, BoltContext, BoltResponse
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
    """Every listener of the app as methods: a quick ``*_ack`` that answers Slack, and the slow part that
    Bolt runs after it as a lazy listener, on ``pool`` (closed with ``close``)."""

    def __init__(self, host: Host, client: WebClient, *, workers: int = 16) -> None:
        self.host = host
        self.client = client
        self.admins = set(host.admins)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="slackbot-work")

    def close(self) -> None:
        """Finish the work already handed over (it persists what it did), then stop the pool."""
        self.pool.shutdown(wait=True, cancel_futures=False)

    # --- middleware ------------------------------------------------------------------------------
    def once_per_event(self, body: dict[str, Any], context: BoltContext, next: Any) -> BoltResponse | None:
        """Drop a retry of an event already handled (by ``event_id``); note when the request arrived
        (``context["received"]``, copied into the lazy listeners: a trigger lives 3 seconds from then)."""
        context["received"] = time.monotonic()
        event_id = body.get("event_id")
        if event_id and not self.host.store.first_time(str(event_id)):
            return BoltResponse(status=200, body="")  # a retry of an event already handled
        return next()

    def ack(self, ack: Any) -> None:
        """Acknowledge at once (the work, if any, follows in a lazy listener). Also for the events and
        actions the bot does not act on: Slack would deliver them again."""
        ack()

    ignore = ack

    # --- events -------------------------------------------------------------------------------------
    def message(self, event: dict[str, Any]) -> None:
        """A message the bot can see: an interview answer or a usage note in a DM, a reply in a listing's thread."""
        if event.get("bot_id") or event.get("subtype"):
            return  # our own posts (and edits, joins, ...) come back as events
        channel, ts, user = str(event.get("channel", "")), str(event.get("ts", "")), event.get("user")
        host = self.host
        if event.get("channel_type") == "im":
            if user and host.interviews.enabled and host.interviews.interviewing(str(user)):
                host.interviews.answer(str(user), entry(str(event.get("text", "")))[:4000])
            else:
                host.courier.say(channel, f"usage:{channel}:{ts}", blocks.trusted(USAGE))
            return
        thread_ts = event.get("thread_ts")
        if thread_ts and user and thread_ts != ts:
            host.desk.thread_reply(str(user), channel, str(thread_ts), ts, entry(str(event.get("text", "")))[:4000])

    def app_home(self, event: dict[str, Any]) -> None:
        """The App Home tab: the open listings."""
        user = str(event.get("user", ""))
        msg = self.host.market_view(user)
        self.host.api.call("views.publish", user_id=user, view={"type": "home", "blocks": msg["blocks"]})

    # --- /deal ----------------------------------------------------------------------------------------
    def deal_ack(self, ack: Any, command: dict[str, Any]) -> None:
        """``/deal``: usage help and the admins' check answered at once; anything else acked empty."""
        refusal = self._refusal(parse_command(command.get("text", "")), command["user_id"])
        if refusal is not None:
            ack(response_type="ephemeral", text=refusal)
            return
        ack()

    def _refusal(self, parsed: Command | Usage, user: str) -> str | None:
        if isinstance(parsed, Usage):
            return _usage(parsed)
        if parsed.name == "admin" and user not in self.admins:
            return "Sorry, only the week's admins can do that."
        return None

    def deal(self, command: dict[str, Any], respond: Any, context: BoltContext) -> None:
        """``/deal``'s work after the ack (nothing when the ack refused it)."""
        parsed, user = parse_command(command.get("text", "")), command["user_id"]
        if isinstance(parsed, Usage) or self._refusal(parsed, user) is not None:
            return
        try:
            self._run(parsed, user, command, respond, _received(context))
        except Exception as exc:  # the person gets a sentence, the log gets the details
            log.exception("command %s failed", parsed.name)
            respond(response_type="ephemeral", text=f"Something went wrong ({type(exc).__name__}).")

    def _run(self, cmd: Command, user: str, command: dict[str, Any], respond: Any, received: float) -> None:
        host, reply = self.host, _responder(respond)
        if cmd.name == "join":
            if host.person(user):
                reply("You have already joined this week's market.")
            elif (host.interviews.enabled and host.interviews.form(user) is None and
                    host.interviews.stage(user) is None) or host.interviews.interviewing(user):
                reply(host.interviews.start(user))
            elif not open_view(self.client, command["trigger_id"], join_view(host.market_name), received):
                reply(TRY_AGAIN.format(what="join"))
        elif cmd.name == "status":
            person = host.person(user)
            if person is None:
                reply("You have not joined yet: type `/deal join`.")
            else:
                respond(response_type="ephemeral", **host.board.status(person))
        elif cmd.name == "market":
            respond(response_type="ephemeral", **host.market_view(user))
        elif cmd.name == "survey":
            person = host.person(user)
            deals = host.board.deals_of(person) if person else []
            if not deals or person is None:
                reply("You have no deals to rate yet.")
            elif not open_view(self.client, command["trigger_id"], survey_view(person.market, deals), received):
                reply(TRY_AGAIN.format(what="survey"))
        elif cmd.name == "admin":
            week = host.week
            ops = {"start": week.start, "resume": week.start, "pause": week.pause, "settle": week.settle,
                   "export": week.export, "pending": week.pending, "resend": week.resend}
            respond(response_type="ephemeral", **blocks.trusted(ops[cmd.arg]()))
        else:
            assert cmd.action is not None
            refusal = host.desk.submit(user, cmd.action, reply)
            if refusal:
                reply(refusal)

    # --- modals ----------------------------------------------------------------------------------------
    def join_ack(self, ack: Any, view: dict[str, Any]) -> None:
        """The join form: its errors shown in the form, or closed."""
        form = parse_join(_state_values(view))
        if isinstance(form, dict):
            ack(response_action="errors", errors={k: v[:150] for k, v in form.items()})
            return
        ack()

    def join_submitted(self, body: dict[str, Any], view: dict[str, Any]) -> None:
        """A valid join form: the person joins; the outcome comes as a DM."""
        user, form = _user_id(body), parse_join(_state_values(view))
        if user is None or isinstance(form, dict):
            return
        host = self.host
        refusal = host.people.join(user, _display_name(host, user), form,
                                   lambda text: host.dm(user, f"note:join:{user}", blocks.notice(text)))
        if refusal:
            host.dm(user, f"note:join-refused:{user}", blocks.notice(refusal))

    def survey_ack(self, ack: Any, view: dict[str, Any]) -> None:
        """The survey form: its errors shown in the form, or closed."""
        answers = parse_survey(_state_values(view))
        if isinstance(answers, dict):
            ack(response_action="errors", errors=answers)
            return
        ack()

    def survey_submitted(self, body: dict[str, Any], view: dict[str, Any]) -> None:
        """A valid survey: its ratings of the person's own deals are stored."""
        user, answers = _user_id(body), parse_survey(_state_values(view))
        if user is None or isinstance(answers, dict):
            return
        ratings, comment = answers
        person = self.host.person(user)
        if person is None:
            return
        allowed = {d.id for d, _ in self.host.board.deals_of(person)}
        stored = store_answers(self.host.folder.path, person.market, person.participant_id, ratings, comment,
                               allowed)
        self.host.dm(user, f"note:survey:{user}", blocks.notice(f"Thank you: {stored} answers stored."))

    # --- buttons ---------------------------------------------------------------------------------------
    @staticmethod
    def _click(body: dict[str, Any], action: dict[str, Any], respond: Any,
               work: Callable[[str, str, Reply], str | None]) -> None:
        user, value, reply = _user_id(body), str(action.get("value", ""))[:2000], _responder(respond)
        if user is None:
            return
        refusal = work(user, value, reply)
        if refusal:
            reply(refusal)

    def approve(self, body: dict[str, Any], action: dict[str, Any], respond: Any) -> None:
        """Approve: the held action goes to the exchange."""
        self._click(body, action, respond, lambda u, v, r: self.host.approvals.decide(u, v, True, r))

    def decline(self, body: dict[str, Any], action: dict[str, Any], respond: Any) -> None:
        """Decline: the agent hears so at its next turn."""
        self._click(body, action, respond, lambda u, v, r: self.host.approvals.decide(u, v, False, r))

    def accept_offer(self, body: dict[str, Any], action: dict[str, Any], respond: Any) -> None:
        """A person trading by hand accepts an offer."""
        self._click(body, action, respond, lambda u, v, r: self.host.desk.submit(u, Accept(offer_id=v), r))

    def reject_offer(self, body: dict[str, Any], action: dict[str, Any], respond: Any) -> None:
        """A person trading by hand rejects an offer."""
        self._click(body, action, respond, lambda u, v, r: self.host.desk.submit(u, Reject(offer_id=v), r))

    def make_offer(self, body: dict[str, Any], action: dict[str, Any], respond: Any) -> None:
        """The one-click offer at the price a person named in a thread (``LISTING|CENTS``)."""
        def work(user: str, value: str, reply: Reply) -> str | None:
            listing, _, amount = value.partition("|")
            digits = amount.lstrip("0")
            if not listing or len(listing) > MAX_ID or not (amount.isascii() and amount.isdigit()) or not digits:
                return "That button is broken; use `/deal offer LISTING PRICE`."
            if len(digits) > len(str(MAX_CENTS)) or int(digits) > MAX_CENTS:
                return f"That offer is more than the most allowed, {format_money(MAX_CENTS)}."
            return self.host.desk.submit(user, MakeOffer(listing_id=listing, amount=int(digits)), reply)

        self._click(body, action, respond, work)

    def interview_review(self, body: dict[str, Any], respond: Any, context: BoltContext) -> None:
        """Open the join form filled in with the mandate the interview extracted."""
        user = _user_id(body)
        if user is None:
            return
        view = join_view(self.host.market_name, initial=self.host.interviews.form(user))
        if not open_view(self.client, body["trigger_id"], view, _received(context)):
            _responder(respond)("Slack was too busy to open the form in time. Please click again.")

    def open_survey(self, body: dict[str, Any], context: BoltContext) -> None:
        """Open the survey of the person's deals."""
        user = _user_id(body)
        if user is None:
            return
        received = _received(context)
        person = self.host.person(user)
        deals = self.host.board.deals_of(person) if person else []
        if person and deals and not open_view(self.client, body["trigger_id"], survey_view(person.market, deals),
                                              received):
            self.host.dm(user, f"note:survey-busy:{user}:{int(received)}",
                         blocks.notice(TRY_AGAIN.format(what="survey")))


def build_app(host: Host, client: WebClient, *, signing_secret: str | None = None, workers: int = 16,
              handler: DealHandler | None = None) -> App:
    """The app around ``host``; with ``signing_secret`` every HTTP request must be signed.

    Every listener is Bolt's ack function plus lazy listeners (Slack wants an answer within 3 seconds):
    with ``process_before_response`` the ack runs on the thread that received the request and Bolt
    hands the lazy part to the handler's pool (``listener_executor``), so slow work never holds an ack.
    """
    handler = handler or DealHandler(host, client, workers=workers)
    app = App(
        client=client,
        signing_secret=signing_secret or "unused-in-socket-mode",
        request_verification_enabled=signing_secret is not None,
        token_verification_enabled=False,
        ignoring_self_events_enabled=True,
        process_before_response=True,
        listener_executor=handler.pool,
    )
    app.middleware(handler.once_per_event)
    app.event("message")(ack=handler.ack, lazy=[handler.message])
    app.event("app_home_opened")(ack=handler.ack, lazy=[handler.app_home])
    app.command("/deal")(ack=handler.deal_ack, lazy=[handler.deal])
    app.view(JOIN_CALLBACK)(ack=handler.join_ack, lazy=[handler.join_submitted])
    app.view(SURVEY_CALLBACK)(ack=handler.survey_ack, lazy=[handler.survey_submitted])
    app.action("approve_deal")(ack=handler.ack, lazy=[handler.approve])
    app.action("decline_deal")(ack=handler.ack, lazy=[handler.decline])
    app.action("offer_accept")(ack=handler.ack, lazy=[handler.accept_offer])
    app.action("offer_reject")(ack=handler.ack, lazy=[handler.reject_offer])
    app.action("make_offer")(ack=handler.ack, lazy=[handler.make_offer])
    app.action("open_survey")(ack=handler.ack, lazy=[handler.open_survey])
    app.action("interview_review")(ack=handler.ack, lazy=[handler.interview_review])
    # last: whatever no listener above takes is still acknowledged, so Slack does not deliver it again
    app.event(re.compile(".*"))(handler.ignore)
    app.action(re.compile(".*"))(handler.ignore)
    return app


def _received(context: BoltContext) -> float:
    """When the request arrived (``time.monotonic()``), as the middleware noted it."""
    received = context.get("received")
    return float(received) if isinstance(received, float) else time.monotonic()


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
