"""The ``anthropic`` backend: the official SDK, tool use, prompt caching.

Cache breakpoints sit on the end of the system prompt (tools + rules + the
principal's instructions and mandate, stable per trader) and on the newest user
message, so each turn reads the previous turns from the cache. ``usage.input_tokens``
excludes cached tokens; cache reads and writes are priced separately. The SDK's
own retries are off: retries, backoff and ``retry-after`` are handled (and counted)
in ``agents.llm.ratelimit``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import anthropic

from agents.llm.agent import ModelPolicy, Reply, ToolCall, post_json, shared_policy
from agents.llm.pricing import Usage
from agents.llm.prompts import RULES
from agents.llm.ratelimit import Retryable, retry_after
from agents.llm.tools import anthropic_tools
from market.backends import BackendContext, BackendError
from market.scenario import TierSettings

EPHEMERAL = {"type": "ephemeral"}
KEY_ENV = "ANTHROPIC_API_KEY"


class AnthropicApi:
    """The Anthropic Messages API wire format."""

    name = "anthropic"

    def request(self, settings: TierSettings, model: str, system: str, messages: list[dict[str, Any]]) -> dict:
        return {
            "model": model,
            "max_tokens": settings.max_tokens,
            "system": [{"type": "text", "text": RULES}, {"type": "text", "text": system, "cache_control": EPHEMERAL}],
            "tools": anthropic_tools(),
            "messages": messages,
        }

    def user(self, results: Sequence[tuple[str, str, bool]], text: str, cache: bool) -> list[dict[str, Any]]:
        content: list[dict[str, Any]] = [
            {"type": "tool_result", "tool_use_id": cid, "content": out, **({"is_error": True} if bad else {})}
            for cid, out, bad in results
        ]
        content.append({"type": "text", "text": text})
        if cache:
            content[-1] = {**content[-1], "cache_control": EPHEMERAL}
        return [{"role": "user", "content": content}]

    def cached(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``messages`` with a cache breakpoint on the last block of the last user message."""
        for i in range(len(messages) - 1, -1, -1):
            if messages[i]["role"] == "user":
                content = list(messages[i]["content"])
                content[-1] = {**content[-1], "cache_control": EPHEMERAL}
                return [*messages[:i], {**messages[i], "content": content}, *messages[i + 1:]]
        return messages

    def parse(self, response: dict[str, Any]) -> Reply:
        blocks = response.get("content") or []
        calls = tuple(
            ToolCall(b["id"], b["name"], b.get("input")) for b in blocks if b.get("type") == "tool_use"
        )
        text = "\n".join(b["text"] for b in blocks if b.get("type") == "text" and b.get("text"))
        kept = [
            {"type": "tool_use", "id": b["id"], "name": b["name"], "input": b.get("input")}
            if b.get("type") == "tool_use" else {"type": "text", "text": b.get("text") or "(empty)"}
            for b in blocks if b.get("type") in ("tool_use", "text")
        ] or [{"type": "text", "text": "(no answer)"}]
        usage = response.get("usage") or {}
        return Reply(
            calls=calls, text=text, stop=response.get("stop_reason") or "end_turn",
            usage=Usage(
                input=usage.get("input_tokens") or 0, output=usage.get("output_tokens") or 0,
                cache_read=usage.get("cache_read_input_tokens") or 0,
                cache_write=usage.get("cache_creation_input_tokens") or 0,
            ),
            assistant={"role": "assistant", "content": kept},
        )

    def client(self, settings: TierSettings) -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(
            api_key=os.environ.get(KEY_ENV), base_url=settings.base_url or os.environ.get("ANTHROPIC_BASE_URL"),
            timeout=settings.timeout, max_retries=0, http_client=anthropic.DefaultAioHttpClient(),
        )

    async def send(self, client: anthropic.AsyncAnthropic, body: bytes) -> tuple[dict, str | None]:
        try:
            return await post_json(client, "/v1/messages", body)
        except anthropic.APIStatusError as exc:
            raise classify(exc.status_code, exc.response.headers, _error(exc), exc.request_id) from None
        except anthropic.APITimeoutError:
            raise Retryable("timeout", "no answer within the timeout") from None
        except anthropic.APIConnectionError as exc:
            raise Retryable("connection", str(exc)) from None


def _error(exc: anthropic.APIStatusError) -> tuple[str, str]:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error", body) if isinstance(body.get("error", body), dict) else {}
    return str(error.get("type") or ""), str(error.get("message") or exc.message)


def classify(status: int, headers: Any, error: tuple[str, str], request_id: str | None) -> Exception:
    """A retryable fault (429, 529 overloaded, 5xx, 408) or a ``BackendError`` that stops the run."""
    kind, message = error
    wait = retry_after(headers)
    if status == 429:
        return Retryable("rate_limited", message, wait)
    if status == 529 or kind == "overloaded_error":
        return Retryable("overloaded", message, wait)
    if status >= 500 or status == 408:
        return Retryable("server_error", f"{status} {message}", wait)
    hint = {401: f"check {KEY_ENV}", 403: f"check {KEY_ENV} and its permissions",
            404: "check the tier's model name"}.get(status, "")
    return BackendError(
        f"anthropic API refused a request: {status} {kind}: {message} (request-id {request_id})"
        + (f"; {hint}" if hint else "")
    )


def build_policy(tier: str, settings: TierSettings, context: BackendContext) -> ModelPolicy:
    """The ``anthropic`` backend for ``tier``; a missing key or model is reported before the run."""
    if not os.environ.get(KEY_ENV):
        raise BackendError(f"tiers.{tier}: the anthropic backend needs an API key: set {KEY_ENV}")
    if not settings.model:
        raise BackendError(f"tiers.{tier}.model: name a model, e.g. claude-opus-4-5 or claude-haiku-4-5")
    policy = shared_policy(context)
    policy.add_tier(tier, settings, AnthropicApi(), settings.model)
    return policy
