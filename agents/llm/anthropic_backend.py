"""The ``anthropic`` backend: the Messages API wire format (tool use, prompt caching) over the official SDK.

Cache breakpoints sit on the tools, on the end of the system prompt (rules + the
principal's instructions and mandate, stable per trader) and on the last two user
messages, so each request reads the previous one's prefix from the cache: four, the
API's maximum, in every conversation state (first turn, later turns, repair). ``usage.input_tokens``
excludes cached tokens; cache reads and writes are priced separately. The SDK's
own retries are off: retries, backoff and ``retry-after`` are handled (and counted)
in ``agents.llm.ratelimit``. ``AnthropicApi`` is pure (requests, replies, error classes); ``build_policy``
gives the tier an ``SdkTransport`` with the key and URL read by ``agents.llm.endpoints``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from typing import Any

import anthropic

from agents.llm.agent import ModelPolicy, shared_policy
from agents.llm.endpoints import ANTHROPIC_KEY as KEY_ENV
from agents.llm.endpoints import anthropic_endpoint
from agents.llm.pricing import Usage
from agents.llm.prompts import RULES
from agents.llm.ratelimit import Retryable, retry_after
from agents.llm.tools import anthropic_tools
from agents.llm.transport import SdkTransport, anthropic_client
from agents.llm.wire import Reply, ToolCall, call_ids, connection_fault, tool_name
from agents.llm.wire import count as _count
from market.backends import AgentFailure, BackendContext, BackendError, FatalPolicyError
from market.scenario import TierSettings

EPHEMERAL = {"type": "ephemeral"}


class AnthropicApi:
    """The Anthropic Messages API wire format."""

    name = "anthropic"
    path = "/v1/messages"
    errors: tuple[type[Exception], ...] = (anthropic.APIStatusError, anthropic.APIConnectionError)

    def request(self, settings: TierSettings, model: str, system: str, messages: list[dict[str, Any]]) -> dict:
        """A request with four cache breakpoints at most: tools, system, and the last two user messages."""
        return {
            "model": model,
            "max_tokens": settings.max_tokens,
            "system": [{"type": "text", "text": RULES}, {"type": "text", "text": system, "cache_control": EPHEMERAL}],
            "tools": anthropic_tools(),
            "messages": breakpoints(messages),
        }

    def user(self, results: Sequence[tuple[str, str, bool]], text: str) -> list[dict[str, Any]]:
        """One user message: the tool results first (as the API requires), then ``text``."""
        content: list[dict[str, Any]] = [
            {"type": "tool_result", "tool_use_id": cid, "content": out or "(empty)",
             **({"is_error": True} if bad else {})}
            for cid, out, bad in results
        ]
        content.append({"type": "text", "text": text})
        return [{"role": "user", "content": content}]

    def parse(self, response: dict[str, Any], taken: Collection[str] = ()) -> Reply:
        """The reply, and an assistant message that is valid to send back (names, ids, inputs, no empty text)."""
        content = response.get("content")
        blocks = [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []
        uses = [b for b in blocks if b.get("type") == "tool_use"]
        ids = call_ids([b.get("id") for b in uses], "toolu_local_", taken)
        calls = tuple(ToolCall(i, str(b.get("name") or ""), b.get("input")) for i, b in zip(ids, uses, strict=True))
        text = "\n".join(b["text"] for b in blocks if b.get("type") == "text" and isinstance(b.get("text"), str)
                         and b["text"])
        kept: list[dict[str, Any]] = []
        known = iter(calls)
        for b in blocks:
            if b.get("type") == "tool_use":
                call = next(known)
                data = call.arguments if isinstance(call.arguments, dict) else {}
                kept.append({"type": "tool_use", "id": call.id, "name": tool_name(call.name), "input": data})
            elif b.get("type") == "text" and isinstance(b.get("text"), str) and b["text"].strip():
                kept.append({"type": "text", "text": b["text"]})
        usage = response.get("usage") if isinstance(response.get("usage"), dict) else {}
        stop = response.get("stop_reason")
        return Reply(
            calls=calls, text=text, stop=stop if isinstance(stop, str) and stop else "end_turn",
            usage=Usage(
                input=_count(usage.get("input_tokens")), output=_count(usage.get("output_tokens")),
                cache_read=_count(usage.get("cache_read_input_tokens")),
                cache_write=_count(usage.get("cache_creation_input_tokens")),
            ),
            assistant={"role": "assistant", "content": kept or [{"type": "text", "text": "(no answer)"}]},
        )

    def classify(self, exc: Exception, url: str) -> Exception:
        """An error answer by ``classify``; a connection that failed (``APITimeoutError`` too) by
        ``connection_fault``."""
        if isinstance(exc, anthropic.APIStatusError):
            return classify(exc.status_code, exc.response.headers, _error(exc), exc.request_id)
        return connection_fault(exc, url)


def breakpoints(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``messages`` with cache breakpoints on the last block of the last two user messages, and nowhere else.

    The last one caches this request; the one before is where the previous request of the conversation
    ended (a turn's question, or the repair after it), so its cached prefix is found whatever the number
    of blocks since. With the tools' and the system's, that is the API's maximum of four, in every state.
    """
    users = [i for i, m in enumerate(messages) if m.get("role") == "user"][-2:]
    out = []
    for i, message in enumerate(messages):
        content = message.get("content")
        if not isinstance(content, list):
            out.append(message)
            continue
        blocks = [{k: v for k, v in b.items() if k != "cache_control"} if "cache_control" in b else b
                  for b in content]
        if i in users and blocks:
            blocks[-1] = {**blocks[-1], "cache_control": EPHEMERAL}
        out.append({**message, "content": blocks})
    return out


def _error(exc: anthropic.APIStatusError) -> tuple[str, str]:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error", body) if isinstance(body.get("error", body), dict) else {}
    return str(error.get("type") or ""), str(error.get("message") or exc.message)


# The Messages API says a prompt is past the context window only in words: a 400 invalid_request_error ("prompt
# is too long: 210000 tokens > 200000 maximum", or "input length and `max_tokens` exceed context limit: ..."), no
# code of its own. So those two phrases, at the start of such an answer, are matched, and nothing wider.
CONTEXT = re.compile(r"^(?:prompt is too long|input length and `max_tokens` exceed context limit)\b", re.I)
# Billing is a 402 billing_error; accounts out of credit have also been answered with a 400 invalid_request_error
# saying only "Your credit balance is too low ...": that phrase alone is matched for it.
OLD_BILLING = re.compile(r"^your credit balance is too low\b", re.I)


def classify(status: int, headers: Any, error: tuple[str, str], request_id: str | None) -> Exception:
    """What an error answer means: ``Retryable`` (429, 529 overloaded, 5xx, 408), ``AgentFailure`` (a 400 or 413
    for this conversation), or ``FatalPolicyError`` (key, permission, unknown model, billing: no call can succeed)."""
    kind, message = error
    wait = retry_after(headers)
    said = f"{status} {kind}: {message} (request-id {request_id})"
    if status == 429:
        return Retryable("rate_limited", message, wait)
    if status == 529 or kind == "overloaded_error":
        return Retryable("overloaded", message, wait)
    if status >= 500 or status == 408:
        return Retryable("server_error", f"{status} {message}", wait)
    fatal = {401: f"authentication failed; check {KEY_ENV}",
             403: f"permission denied; check {KEY_ENV} and its permissions",
             404: "unknown model or endpoint; check the tier's model name and base_url",
             402: "billing: add credit to the account"}.get(status)
    invalid = status == 400 and kind == "invalid_request_error"
    if fatal is None and (kind == "billing_error" or (invalid and OLD_BILLING.search(message))):
        fatal = "billing: add credit to the account"
    if fatal is not None:
        return FatalPolicyError(f"anthropic API: {fatal} ({said})")
    if status == 413 or kind == "request_too_large" or (invalid and CONTEXT.search(message)):
        return AgentFailure("context_too_long", said)
    return AgentFailure("bad_request", said)


def build_policy(tier: str, settings: TierSettings, context: BackendContext) -> ModelPolicy:
    """The ``anthropic`` backend for ``tier``; a missing key or model is reported before the run."""
    endpoint = anthropic_endpoint(settings.base_url)
    if not endpoint.key:
        raise BackendError(f"tiers.{tier}: the anthropic backend needs an API key: set {KEY_ENV}")
    if not settings.model:
        raise BackendError(f"tiers.{tier}.model: name a model, e.g. claude-opus-4-5 or claude-haiku-4-5")
    policy = shared_policy(context)
    api = AnthropicApi()
    transport = SdkTransport(api, lambda: anthropic_client(endpoint, settings))
    policy.add_tier(tier, settings, api, settings.model, transport)
    return policy
