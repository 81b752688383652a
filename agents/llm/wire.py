"""What every wire format shares: the wire-neutral reply, the ``Api`` port, and pure helpers.

A wire format (``agents.llm.anthropic_backend.AnthropicApi``, ``openai_backend.OpenAIApi``,
``constrained.ConstrainedApi``, ``local_backend.LocalApi``) builds requests, reads answers and
classifies an SDK's errors, and nothing more: it sends nothing (``agents.llm.transport`` does) and
reads no key, URL or environment variable. Nothing here calls back into the policy.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx2
import orjson

from agents.llm.pricing import Usage
from agents.llm.ratelimit import Retryable, Unreachable
from market.backends import AgentFailure
from market.scenario import TierSettings

MAX_RESPONSE_BYTES = 8 * 2**20  # an answer longer than this is not read (hostile_json)
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@dataclass(frozen=True)
class ToolCall:
    """One tool call of an answer: its id, the tool's name and its arguments as the wire gave them."""

    id: str
    name: str
    arguments: Any  # a dict (Anthropic) or a JSON string (OpenAI)


@dataclass(frozen=True)
class Reply:
    """One model answer, in wire-neutral form."""

    calls: tuple[ToolCall, ...]
    text: str
    stop: str  # "tool_use", "end_turn", "max_tokens", "refusal", ...
    usage: Usage
    assistant: dict[str, Any]  # the assistant message to keep in the conversation


class Api(Protocol):
    """One wire format (Anthropic Messages, OpenAI chat completions, constrained answers): pure.

    ``request`` makes a request the API accepts from any conversation the policy keeps (it places the
    cache breakpoints itself, at most the API's limit); ``parse`` keeps an assistant message that is
    valid to send back (tool names and ids as the API requires, no empty text); ``classify`` says what
    one of the SDK's ``errors`` means. ``name`` is what a cassette records; ``path`` is where a request
    is POSTed, relative to the SDK client's base URL.
    """

    name: str
    path: str
    errors: tuple[type[Exception], ...]

    def request(self, settings: TierSettings, model: str, system: str, messages: list[dict[str, Any]]) -> dict:
        """The request of a conversation (``messages`` as ``user`` and ``parse`` made them) for ``model``."""
        ...

    def user(self, results: Sequence[tuple[str, str, bool]], text: str) -> list[dict[str, Any]]:
        """The user message(s) answering the last tool calls with ``results`` (id, text, is_error), then ``text``."""
        ...

    def parse(self, response: dict[str, Any], taken: Collection[str] = ()) -> Reply:
        """The reply of an answer; ``taken``: the tool call ids the conversation already uses."""
        ...

    def classify(self, exc: Exception, url: str) -> Exception:
        """What one of ``errors`` raised by the SDK on ``url`` means: ``Retryable`` (try again), ``AgentFailure``
        (this conversation) or ``FatalPolicyError`` (the account), told apart by type, status and error code."""
        ...


def read_body(raw: bytes) -> dict[str, Any]:
    """An API answer's JSON body, read with bounds; ``AgentFailure("hostile_json")`` past them."""
    if len(raw) > MAX_RESPONSE_BYTES:
        raise AgentFailure("hostile_json", f"the answer is {len(raw):,} bytes long (at most {MAX_RESPONSE_BYTES:,})")
    try:
        body = orjson.loads(raw)  # 64-bit numbers, nesting at most 1024 deep: a bounded parse
    except orjson.JSONDecodeError as exc:
        raise AgentFailure("hostile_json", f"the answer cannot be read as JSON ({exc.msg})") from None
    if not isinstance(body, dict):
        raise AgentFailure("hostile_json", f"the answer is a JSON {type(body).__name__}, not an object")
    return body


def connection_fault(exc: Exception, url: str) -> Retryable:
    """The fault of an SDK's ``APIConnectionError`` (or its ``APITimeoutError``) on ``url``, by the type of the
    transport error it wraps: an answer that did not come in time is a ``timeout``; anything else (name
    resolution, refused, TLS, a connect timeout, a dropped connection) is ``Unreachable``."""
    cause = exc.__cause__
    if isinstance(cause, httpx2.TimeoutException) and not isinstance(cause, httpx2.ConnectTimeout):
        return Retryable("timeout", "no answer within the timeout")
    return Unreachable(url, f"{type(cause).__name__}: {cause}" if cause is not None else str(exc))


def tool_name(name: Any) -> str:
    """A tool name the APIs accept in a kept assistant message (a model may have written any text)."""
    text = name if isinstance(name, str) else ""
    return text if TOOL_NAME.match(text) else (re.sub(r"[^a-zA-Z0-9_-]", "_", text)[:64] or "unnamed_tool")


def call_ids(ids: Sequence[Any], prefix: str, taken: Collection[str] = ()) -> list[str]:
    """Ids for a reply's tool calls: as given, or made up when missing, malformed or already used in the
    reply or the conversation (``taken``): local servers repeat ``call_0`` and the APIs want them unique."""
    out: list[str] = []
    for given in ids:
        cid = given if isinstance(given, str) and TOOL_NAME.match(given) else ""
        n = len(out)
        while not cid or cid in out or cid in taken:
            cid, n = f"{prefix}{n}", n + 1
        out.append(cid)
    return out


def count(value: Any) -> int:
    """A token count as the API gave it, or 0 when it is not a non-negative whole number."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


__all__ = ["Api", "Reply", "ToolCall", "call_ids", "connection_fault", "count", "read_body", "tool_name"]
