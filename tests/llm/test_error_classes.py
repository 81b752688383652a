"""Errors told apart by their type, status and code, never by wide matches on English text."""

from __future__ import annotations

import httpx
import openai
import pytest

from agents.llm import anthropic_backend, openai_backend
from agents.llm.tools import HostileJson, ToolCallError, parse_arguments
from market.backends import AgentFailure, FatalPolicyError


def _anthropic(status: int, kind: str, message: str) -> Exception:
    return anthropic_backend.classify(status, {}, (kind, message), "req_1")


@pytest.mark.parametrize(("status", "kind", "message", "expected"), [
    (400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum", "context_too_long"),
    (400, "invalid_request_error", "input length and `max_tokens` exceed context limit: 197626 + 8192 > 200000",
     "context_too_long"),
    (413, "request_too_large", "Request exceeds the maximum allowed number of bytes.", "context_too_long"),
    # the words alone, in another kind of answer or in the middle of a refusal, are not the context window's
    (400, "invalid_request_error", "messages.1.content: the text 'prompt is too long' is refused", "bad_request"),
    (400, "invalid_request_error", "tools.0.name: the context window of this tool is too many tokens", "bad_request"),
])
def test_anthropic_context_window(status: int, kind: str, message: str, expected: str) -> None:
    failure = _anthropic(status, kind, message)
    assert isinstance(failure, AgentFailure) and failure.kind == expected


def test_anthropic_billing_by_its_type_and_the_old_400() -> None:
    assert isinstance(_anthropic(402, "billing_error", "Payment required"), FatalPolicyError)
    assert isinstance(_anthropic(400, "billing_error", "anything"), FatalPolicyError)
    old = _anthropic(400, "invalid_request_error", "Your credit balance is too low to access the Anthropic API.")
    assert isinstance(old, FatalPolicyError) and "billing" in str(old)
    # "quota" or "billing" in some other refusal says nothing about the account
    refused = _anthropic(400, "invalid_request_error", "messages.0: a message about billing and quota")
    assert isinstance(refused, AgentFailure) and refused.kind == "bad_request"


def _openai(status: int, body: dict[str, object]) -> Exception:
    request = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")
    response = httpx.Response(status, request=request, json=body)
    return openai_backend.classify(openai.APIStatusError("error", response=response, body=body))


@pytest.mark.parametrize(("status", "body", "expected"), [
    (400, {"error": {"message": "This model's maximum context length is 8192 tokens.", "type": "invalid_request_error",
                     "code": "context_length_exceeded"}}, "context_too_long"),
    (400, {"error": {"message": "too big", "code": "context_length_exceeded"}}, "context_too_long"),
    (413, {"error": {"message": "payload too large"}}, "context_too_long"),
    # vLLM: a bare 400 whose only sign is the sentence OpenAI also uses
    (400, {"object": "error", "message": "This model's maximum context length is 2048 tokens. However, you requested "
           "3000 tokens.", "type": "BadRequestError", "param": None, "code": 400}, "context_too_long"),
    # a coded 400 mentioning a context window is about something else
    (400, {"error": {"message": "the context window setting is invalid", "code": "invalid_value"}}, "bad_request"),
    (400, {"error": {"message": "too many tokens in the tool name", "code": None}}, "bad_request"),
])
def test_openai_context_window(status: int, body: dict[str, object], expected: str) -> None:
    failure = _openai(status, body)
    assert isinstance(failure, AgentFailure) and failure.kind == expected


def test_openai_quota_by_its_code() -> None:
    assert isinstance(_openai(429, {"error": {"message": "You exceeded your current quota",
                                              "code": "insufficient_quota"}}), FatalPolicyError)


@pytest.mark.parametrize("text", ["[" * 2000 + "]" * 2000, '{"amount": 1' + "0" * 4300 + "}",
                                  '{"amount": 1e400}', "[" * 1100 + "1,]"])
def test_hostile_arguments_by_what_they_hold(text: str) -> None:
    with pytest.raises(HostileJson):
        parse_arguments("make_offer", text)


@pytest.mark.parametrize("text", ['{"amount": NaN}', '{"amount": 1,}', '{"note": "\\ud800"}', '{"amount": '])
def test_ordinary_bad_json_is_a_call_to_repair(text: str) -> None:
    with pytest.raises(ToolCallError, match="make_offer: the arguments are not valid JSON"):
        parse_arguments("make_offer", text)
