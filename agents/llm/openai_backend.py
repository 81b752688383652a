"""The ``openai`` backend: any OpenAI-compatible chat completions endpoint (OpenAI,
vLLM, Ollama, ...) through the official SDK.

``usage.prompt_tokens`` includes cached tokens (``prompt_tokens_details.cached_tokens``);
they are split out so each kind is priced once. Tool arguments arrive as a JSON
string, which may be malformed: that is a malformed call (one repair attempt).
A 429 ``insufficient_quota`` stops the run (``FatalPolicyError``); other 429s are retried.
``OpenAIApi`` is pure (requests, replies, error classes); ``build_policy`` gives the tier an
``SdkTransport`` with the key and URL read by ``agents.llm.endpoints``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import openai
import orjson

from agents.llm.agent import ModelPolicy, shared_policy
from agents.llm.endpoints import OPENAI_KEY as KEY_ENV
from agents.llm.endpoints import openai_endpoint
from agents.llm.pricing import Usage
from agents.llm.prompts import RULES
from agents.llm.ratelimit import Retryable, retry_after
from agents.llm.tools import openai_tools, parse_arguments
from agents.llm.transport import SdkTransport, openai_client
from agents.llm.wire import Reply, ToolCall, call_ids, connection_fault, tool_name
from agents.llm.wire import count as _count
from market.backends import AgentFailure, BackendContext, BackendError, FatalPolicyError
from market.scenario import TierSettings

STOPS: Mapping[str, str] = {"length": "max_tokens", "tool_calls": "tool_use", "stop": "end_turn",
                            "content_filter": "refusal"}
"""How an answer ended, in the policy's words, by its choice's ``finish_reason`` (another is kept as it is)."""


class OpenAIApi:
    """The OpenAI chat completions wire format."""

    name = "openai"
    path = "/chat/completions"
    errors: tuple[type[Exception], ...] = (openai.APIStatusError, openai.APIConnectionError)

    def request(self, settings: TierSettings, model: str, system: str, messages: list[dict[str, Any]]) -> dict:
        """A request (prefix caching is automatic on OpenAI-compatible servers: nothing to mark)."""
        return {
            "model": model,
            "max_tokens": settings.max_tokens,
            "messages": [{"role": "system", "content": RULES + "\n\n" + system}, *messages],
            "tools": openai_tools(),
        }

    def user(self, results: Sequence[tuple[str, str, bool]], text: str) -> list[dict[str, Any]]:
        """A ``role: tool`` message per result (answering the assistant's calls), then the user message."""
        tool = [{"role": "tool", "tool_call_id": cid, "content": out or "(empty)"} for cid, out, _ in results]
        return [*tool, {"role": "user", "content": text}]

    def parse(self, response: dict[str, Any], taken: Collection[str] = ()) -> Reply:
        """The reply, and an assistant message that is valid to send back (names, ids, string arguments)."""
        choice, message = first_choice(response)
        listed = message.get("tool_calls")
        raw_calls = [c for c in listed if isinstance(c, dict)] if isinstance(listed, list) else []
        functions = [c.get("function") if isinstance(c.get("function"), dict) else {} for c in raw_calls]
        ids = call_ids([c.get("id") for c in raw_calls], "call_local_", taken)
        calls = tuple(
            ToolCall(i, str(f.get("name") or ""), f.get("arguments", "")) for i, f in zip(ids, functions, strict=True)
        )
        stop = stop_reason(choice, message, STOPS)
        content = message.get("content") if isinstance(message.get("content"), str) else ""
        text = content or (message.get("refusal") if isinstance(message.get("refusal"), str) else "") or ""
        assistant: dict[str, Any] = {"role": "assistant", "content": content or ("" if calls else "(no answer)")}
        if calls:
            assistant["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": tool_name(c.name), "arguments": _kept(c)}}
                for c in calls
            ]
        return Reply(calls=calls, text=text, stop=stop, usage=usage_of(response), assistant=assistant)

    def classify(self, exc: Exception, url: str) -> Exception:
        """An error answer by ``classify``; a connection that failed (``APITimeoutError`` too) by
        ``connection_fault``."""
        if isinstance(exc, openai.APIStatusError):
            return classify(exc)
        return connection_fault(exc, url)


def first_choice(response: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A chat completion's first choice and its message, each ``{}`` where the answer has none."""
    choices = response.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
    message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    return choice, message


def stop_reason(choice: dict[str, Any], message: dict[str, Any], stops: Mapping[str, str]) -> str:
    """How the answer in ``choice`` ended: its ``finish_reason`` (``stop`` when it gives none) by ``stops``; a
    message with a ``refusal`` is a refusal."""
    if message.get("refusal"):
        return "refusal"
    finish = choice.get("finish_reason") if isinstance(choice.get("finish_reason"), str) else "stop"
    return stops.get(finish, finish)


def usage_of(response: dict[str, Any]) -> Usage:
    """A chat completion's tokens: ``prompt_tokens`` include the cached ones
    (``prompt_tokens_details.cached_tokens``), split out so each kind is priced once."""
    usage = response.get("usage") if isinstance(response.get("usage"), dict) else {}
    details = usage.get("prompt_tokens_details") if isinstance(usage.get("prompt_tokens_details"), dict) else {}
    cached, prompt = _count(details.get("cached_tokens")), _count(usage.get("prompt_tokens"))
    return Usage(input=max(0, prompt - cached), output=_count(usage.get("completion_tokens")),
                 cache_read=min(cached, prompt), cache_write=0)


def _kept(call: ToolCall) -> str:
    """A call's arguments as kept in the conversation: the JSON object text it gave, else ``{}`` (some
    servers render the history through a template that must read them)."""
    arguments = call.arguments
    if isinstance(arguments, dict):
        return orjson.dumps(arguments).decode()
    if isinstance(arguments, str):
        try:
            if isinstance(parse_arguments(call.name, arguments), dict):
                return arguments
        except ValueError:
            pass
    return "{}"


# OpenAI and llama.cpp's server give a prompt past the context window its own code (context_length_exceeded); some
# OpenAI-compatible servers (vLLM) answer a bare 400 saying only "This model's maximum context length is N tokens":
# that phrase, in a 400 with no code (or a number for one), is matched for them, and nothing wider.
CONTEXT = re.compile(r"\bmaximum context length is\b", re.I)


def classify(exc: openai.APIStatusError) -> Exception:
    """What an error answer means: ``Retryable`` (429, 5xx, 408), ``AgentFailure`` (a 400, 413 or 422 for this
    conversation), or ``FatalPolicyError`` (key, permission, unknown model, quota: no call can succeed)."""
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error") if isinstance(body.get("error"), dict) else body
    code = str(error.get("code") or error.get("type") or "")
    message = str(error.get("message") or exc.message)
    status = exc.status_code
    said = f"{status} {code}: {message} (request-id {exc.request_id})"
    if status == 429 and code == "insufficient_quota":
        return FatalPolicyError(f"OpenAI-compatible API: insufficient quota; add credit or use another key ({said})")
    if status == 429:
        return Retryable("rate_limited", message, retry_after(exc.response.headers))
    if status >= 500 or status == 408:
        return Retryable("server_error", f"{status} {message}", retry_after(exc.response.headers))
    fatal = {401: f"authentication failed; check {KEY_ENV}", 403: f"permission denied; check {KEY_ENV}",
             404: "unknown model or endpoint; check the tier's model name and base_url",
             402: "billing: add credit to the account"}.get(status)
    if fatal is not None:
        return FatalPolicyError(f"OpenAI-compatible API: {fatal} ({said})")
    uncoded = status == 400 and not isinstance(error.get("code"), str)  # vLLM: "code": 400
    if status == 413 or code == "context_length_exceeded" or (uncoded and CONTEXT.search(message)):
        return AgentFailure("context_too_long", said)
    return AgentFailure("bad_request", said)


def build_policy(tier: str, settings: TierSettings, context: BackendContext) -> ModelPolicy:
    """The ``openai`` backend for ``tier`` (base_url from the tier or OPENAI_BASE_URL); with
    ``options: {constrained: json_schema}`` (or ``json_object``, ``gbnf``) its answers are held to the action schema
    by the server (``agents.llm.constrained``)."""
    endpoint = openai_endpoint(settings.base_url)
    if not endpoint.key:
        raise BackendError(
            f"tiers.{tier}: the openai backend needs an API key: set {KEY_ENV} (any value for a local server)"
        )
    if not settings.model:
        raise BackendError(f"tiers.{tier}.model: name the model the endpoint serves")
    api = openai_api(tier, settings)
    policy = shared_policy(context)
    transport = SdkTransport(api, lambda: openai_client(endpoint, settings))
    policy.add_tier(tier, settings, api, settings.model, transport)
    return policy


def openai_api(tier: str, settings: TierSettings) -> OpenAIApi:
    """The wire of an ``openai`` tier: ``OpenAIApi``, or ``ConstrainedApi`` when it sets ``options.constrained``
    (``BackendError`` for an unknown form)."""
    from agents.llm.constrained import ConstrainedApi, constrained_form  # it builds on OpenAIApi (this module)

    return OpenAIApi() if constrained_form(tier, settings) is None else ConstrainedApi()
