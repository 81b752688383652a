"""Every Web API call the bot makes, with Slack's retry rules (tenacity).

* HTTP 429 on any method waits the ``Retry-After`` seconds and tries again;
* transient failures (``ratelimited``, ``internal_error``, ``fatal_error``,
  ``service_unavailable``, ``request_timeout``, HTTP 5xx, a dropped or timed-out
  connection) back off exponentially, with jitter, and try again;
* anything else is permanent: ``Permanent`` carries Slack's error code and a
  sentence saying what to fix. Tokens never appear in either.

Waits happen on a stop event, so shutting down interrupts a wait at once
(``Stopped``): the caller leaves the work queued for the next start.
"""

from __future__ import annotations

import random
import threading
import urllib.error
from collections.abc import Mapping
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

TRANSIENT = frozenset({"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout",
                       "team_added_to_org"})

READS = frozenset({"conversations.list", "users.info", "conversations.info"})  # form/query methods

FIXES: Mapping[str, str] = {
    "not_authed": "set SLACK_BOT_TOKEN to the bot token (xoxb-...)",
    "invalid_auth": "SLACK_BOT_TOKEN is wrong or revoked: copy the bot token again from the app's OAuth page",
    "account_inactive": "the bot token belongs to a deleted app or user: reinstall the app",
    "token_revoked": "the app was uninstalled: reinstall it and update SLACK_BOT_TOKEN",
    "missing_scope": "add the scope Slack names in 'needed' to the app (slackbot/manifest.yaml) and reinstall",
    "channel_not_found": "the channel was deleted or the bot cannot see it: invite @dealbot or restore the channel",
    "not_in_channel": "invite @dealbot to the channel (/invite @dealbot)",
    "is_archived": "the channel is archived: unarchive it",
    "restricted_action": "a workspace admin restricts this: allow the app to post or create channels",
    "name_taken": "a channel of that name exists and cannot be used: rename it or change slack.channel_prefix",
    "user_not_found": "the user left the workspace or the id is wrong",
    "cannot_dm_bot": "that user is a bot and cannot get DMs",
    "msg_too_long": "the message is too long (a bug: report it)",
    "invalid_blocks": "Slack refused the message's blocks (a bug: report it)",
    "expired_trigger_id": "the person took more than 3 seconds to reach the bot: they should try again",
}


def fix_for(error: str) -> str:
    """What to do about a permanent Slack error code."""
    return FIXES.get(error, "see https://api.slack.com/methods for the error code")


class Permanent(Exception):
    """A call Slack refused for good (retrying will not help)."""

    def __init__(self, method: str, error: str) -> None:
        super().__init__(f"{method}: {error} ({fix_for(error)})")
        self.method, self.error = method, error


class Stopped(Exception):
    """The bot is shutting down: the call was not made (or not retried)."""


class _Retry(Exception):
    def __init__(self, method: str, error: str, wait: float | None) -> None:
        super().__init__(f"{method}: {error}")
        self.error, self.wait = error, wait


def _retry_after(exc: SlackApiError) -> float | None:
    headers = exc.response.headers if exc.response is not None else {}
    for name, value in (headers or {}).items():
        if name.lower() == "retry-after":
            value = value[0] if isinstance(value, list) else value
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                return None
    return None


def classify(method: str, exc: BaseException) -> Exception:
    """A client exception -> ``_Retry`` (with the wait Slack asked for, if any) or ``Permanent``."""
    if isinstance(exc, SlackApiError):
        response = exc.response
        status = response.status_code if response is not None else 0
        error = str(response.get("error", "")) if response is not None else ""
        if status == 429:
            return _Retry(method, error or "ratelimited", _retry_after(exc))
        if status >= 500 or error in TRANSIENT:
            return _Retry(method, error or f"http_{status}", _retry_after(exc))
        return Permanent(method, error or f"http_{status}")
    if isinstance(exc, (urllib.error.URLError, TimeoutError, ConnectionError, OSError)):
        return _Retry(method, type(exc).__name__, None)
    return Permanent(method, type(exc).__name__)


class WebApi:
    """``call(method, **args)`` with the retry rules above; ``stop`` interrupts waits."""

    def __init__(self, client: WebClient, *, attempts: int = 12, backoff: float = 1.0, max_wait: float = 60.0,
                 stop: threading.Event | None = None) -> None:
        self.client = client
        self.attempts = attempts
        self.backoff = backoff
        self.max_wait = max_wait
        self.stop = stop or threading.Event()
        self.retries = 0  # calls made again (429 or transient), for benchmarks and tests
        self._lock = threading.Lock()

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retry) and exc.wait is not None:
            return min(exc.wait, self.max_wait)
        base = self.backoff * 2 ** (state.attempt_number - 1)
        return min(self.max_wait, base * (0.5 + random.random() / 2))

    def _sleep(self, seconds: float) -> None:
        with self._lock:
            self.retries += 1
        if self.stop.wait(seconds):
            raise Stopped("stopping")

    def call(self, method: str, **args: Any) -> SlackResponse:
        """Make one Web API call; raises ``Permanent`` (with what to fix) or ``Stopped``."""
        if self.stop.is_set():
            raise Stopped("stopping")
        args = {k: v for k, v in args.items() if v is not None}
        retrying = Retrying(retry=retry_if_exception_type(_Retry), stop=stop_after_attempt(self.attempts),
                            wait=self._wait, sleep=self._sleep, reraise=True)
        try:
            for attempt in retrying:
                with attempt:
                    try:
                        if method in READS:
                            return self.client.api_call(method, http_verb="GET", params=args)
                        return self.client.api_call(method, json=args)
                    except Exception as exc:  # turned into _Retry or Permanent
                        raise classify(method, exc) from None
        except _Retry as exc:
            raise Permanent(method, f"gave up after {self.attempts} attempts ({exc.error})") from None
        raise AssertionError("unreachable")  # pragma: no cover
