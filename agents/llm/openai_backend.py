"""The ``openai`` backend: any OpenAI-compatible chat completions endpoint (OpenAI,
vLLM, Ollama, ...) through the official SDK.

``usage.prompt_tokens`` includes cached tokens (``prompt_tokens_details.cached_tokens``);
they are split out so each kind is priced once. Tool arguments arrive as a JSON
string, which may be malformed: that is a malformed call (one repair attempt).
A 429 ``insufficient_quota`` stops the run; other 429s are retried.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import openai

from agents.llm.agent import ModelPolicy, Reply, ToolCall, post_json, shared_policy
from agents.llm.pricing import Usage
from agents.llm.prompts import RULES
from agents.llm.ratelimit import Retryable, retry_after
from agents.llm.tools import openai_tools
from market.backends import BackendContext, BackendError
from market.scenario import TierSettings

KEY_ENV = "OPENAI_API_KEY"
URL_ENV = "OPENAI_BASE_URL"


class OpenAIApi:
    """The OpenAI chat completions wire format."""

    name = "openai"

    def request(self, settings: TierSettings, model: str, system: str, messages: list[dict[str, Any]]) -> dict:
        return {
            "model": model,
            "max_tokens": settings.max_tokens,
            "messages": [{"role": "system", "content": RULES + "\n\n" + system}, *messages],
            "tools": openai_tools(),
        }

    def user(self, results: Sequence[tuple[str, str, bool]], text: str, cache: bool) -> list[dict[str, Any]]:
        del cache  # OpenAI-compatible servers cache prefixes by themselves
        tool = [{"role": "tool", "tool_call_id": cid, "content": out} for cid, out, _ in results]
        return [*tool, {"role": "user", "content": text}]

    def cached(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return messages  # prefix caching is automatic

    def parse(self, response: dict[str, Any]) -> Reply:
        choice = (response.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        raw_calls = message.get("tool_calls") or []
        calls = tuple(
            ToolCall(c.get("id", ""), (c.get("function") or {}).get("name", ""), (c.get("function") or {}).get(
                "arguments", "")) for c in raw_calls
        )
        finish = choice.get("finish_reason") or "stop"
        stop = {"length": "max_tokens", "tool_calls": "tool_use", "stop": "end_turn",
                "content_filter": "refusal"}.get(finish, finish)
        if message.get("refusal"):
            stop = "refusal"
        usage = response.get("usage") or {}
        cached = ((usage.get("prompt_tokens_details") or {}).get("cached_tokens")) or 0
        assistant: dict[str, Any] = {"role": "assistant", "content": message.get("content") or ""}
        if raw_calls:
            assistant["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}} for c in calls
            ]
        return Reply(
            calls=calls, text=message.get("content") or message.get("refusal") or "", stop=stop,
            usage=Usage(input=(usage.get("prompt_tokens") or 0) - cached, output=usage.get("completion_tokens") or 0,
                        cache_read=cached, cache_write=0),
            assistant=assistant,
        )

    def client(self, settings: TierSettings) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            api_key=os.environ.get(KEY_ENV), base_url=settings.base_url or os.environ.get(URL_ENV) or None,
            timeout=settings.timeout, max_retries=0, http_client=openai.DefaultAioHttpClient(),
        )

    async def send(self, client: openai.AsyncOpenAI, body: bytes) -> tuple[dict, str | None]:
        try:
            return await post_json(client, "/chat/completions", body)
        except openai.APIStatusError as exc:
            raise classify(exc) from None
        except openai.APITimeoutError:
            raise Retryable("timeout", "no answer within the timeout") from None
        except openai.APIConnectionError as exc:
            raise Retryable("connection", str(exc)) from None


def classify(exc: openai.APIStatusError) -> Exception:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error") if isinstance(body.get("error"), dict) else body
    code = str(error.get("code") or error.get("type") or "")
    message = str(error.get("message") or exc.message)
    status = exc.status_code
    if status == 429 and code == "insufficient_quota":
        return BackendError(f"OpenAI-compatible API: insufficient quota ({message}); add credit or use another key")
    if status == 429:
        return Retryable("rate_limited", message, retry_after(exc.response.headers))
    if status >= 500 or status == 408:
        return Retryable("server_error", f"{status} {message}", retry_after(exc.response.headers))
    hint = {401: f"check {KEY_ENV}", 404: "check the tier's model name and base_url"}.get(status, "")
    return BackendError(
        f"OpenAI-compatible API refused a request: {status} {code}: {message} (request-id {exc.request_id})"
        + (f"; {hint}" if hint else "")
    )


def build_policy(tier: str, settings: TierSettings, context: BackendContext) -> ModelPolicy:
    """The ``openai`` backend for ``tier`` (base_url from the tier or OPENAI_BASE_URL)."""
    if not os.environ.get(KEY_ENV):
        raise BackendError(
            f"tiers.{tier}: the openai backend needs an API key: set {KEY_ENV} (any value for a local server)"
        )
    if not settings.model:
        raise BackendError(f"tiers.{tier}.model: name the model the endpoint serves")
    policy = shared_policy(context)
    policy.add_tier(tier, settings, OpenAIApi(), settings.model)
    return policy
