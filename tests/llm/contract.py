"""The request rules of the real model APIs, checked the way the services check them.

``check_anthropic(request)`` and ``check_openai(request)`` raise ``Refused`` for a
request the real service answers with 400 ``invalid_request_error``; the fakes in
``tests/llm/fakes.py`` call them on every request and answer with the real error
body (``anthropic_error`` / ``openai_error``), and tests call them directly on every
request a builder makes. The rules and the messages follow the services' documented
behaviour and the error texts they are seen to send:

Anthropic Messages API (``POST /v1/messages``):
- ``model``, ``max_tokens`` (an integer >= 1) and a non-empty ``messages`` are required;
- at most 4 blocks carry ``cache_control``, counted over ``tools``, ``system`` and every
  message's content blocks ("A maximum of 4 blocks with cache_control may be provided. Found 5.");
- the first message is ``user``; roles alternate user/assistant;
- no empty content: a message's content is a non-empty string or a non-empty list of blocks,
  a text block's text is not empty or whitespace;
- every ``tool_use`` id of an assistant message is answered by a ``tool_result`` with that id in
  the next message, which is a user message; ``tool_result`` blocks come first in it; a
  ``tool_result`` without a ``tool_use`` of that id in the previous message is refused;
  ``tool_use`` ids are unique; a ``tool_use`` input is an object;
- tool names match ``^[a-zA-Z0-9_-]{1,64}$`` and are unique; ``input_schema.type`` is ``object``;
- a forced ``tool_choice`` names one of the tools.

OpenAI chat completions (``POST /v1/chat/completions``):
- ``model`` and a non-empty ``messages`` are required; roles are system, developer, user,
  assistant or tool;
- an assistant message has a string ``content`` or ``tool_calls``; each tool call has an id, type
  ``function``, a valid function name and string ``arguments``;
- every assistant ``tool_calls`` id is answered by a ``role: tool`` message (with that
  ``tool_call_id`` and string content) before the next user or assistant message; a tool message
  that answers no pending call is refused;
- user and system content is a non-empty string (or a non-empty list of parts);
- tools are ``type: function`` with a valid, unique name and ``parameters.type`` ``object``, at most 128;
- ``max_tokens`` / ``max_completion_tokens``, when given, are integers >= 1;
- a forced ``tool_choice`` names one of the tools.

A context window (``context_tokens``) adds the services' "prompt is too long" refusal, with
tokens counted as the fakes count them (compact JSON bytes / 4).
"""

from __future__ import annotations

import re
from typing import Any

import orjson

TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
MAX_CACHE_BLOCKS = 4
OPENAI_ROLES = ("system", "developer", "user", "assistant", "tool")


class Refused(ValueError):
    """A request the service refuses with 400 ``invalid_request_error``; ``param`` names the field (OpenAI)."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


def anthropic_error(exc: Refused) -> dict[str, Any]:
    """The Anthropic 400 body for ``exc``."""
    return {"type": "error", "error": {"type": "invalid_request_error", "message": exc.message}}


def openai_error(exc: Refused) -> dict[str, Any]:
    """The OpenAI 400 body for ``exc``."""
    return {"error": {"message": exc.message, "type": "invalid_request_error", "param": exc.param, "code": exc.code}}


def prompt_tokens(request: dict[str, Any]) -> int:
    """Tokens of a request's prompt as the fakes count them: compact JSON bytes of tools, system, messages / 4."""
    parts = [request.get("tools") or [], request.get("system") or [], request.get("messages") or []]
    return sum(len(orjson.dumps(p)) for p in parts) // 4


# --- Anthropic ----------------------------------------------------------------------------------------------


def _blocks(content: Any) -> list[Any]:
    return content if isinstance(content, list) else []


def check_anthropic(request: Any, context_tokens: int | None = None) -> None:
    """Raise ``Refused`` for a request the Anthropic Messages API refuses (see the module docstring)."""
    if not isinstance(request, dict):
        raise Refused("request body must be a JSON object")
    if not isinstance(request.get("model"), str) or not request["model"]:
        raise Refused("model: Field required")
    max_tokens = request.get("max_tokens")
    if max_tokens is None:
        raise Refused("max_tokens: Field required")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise Refused("max_tokens: Input should be a valid integer greater than or equal to 1")
    messages = request.get("messages")
    if not isinstance(messages, list):
        raise Refused("messages: Field required")
    if not messages:
        raise Refused("messages: at least one message is required")
    cache_blocks = 0
    tool_names: list[str] = []
    for i, tool in enumerate(request.get("tools") or []):
        if not isinstance(tool, dict):
            raise Refused(f"tools.{i}: Input should be an object")
        name = tool.get("name")
        if not isinstance(name, str) or not TOOL_NAME.match(name):
            raise Refused(f"tools.{i}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'")
        schema = tool.get("input_schema")
        if not isinstance(schema, dict) or schema.get("type") != "object":
            raise Refused(f"tools.{i}.custom.input_schema.type: Input should be 'object'")
        cache_blocks += _cache_mark(tool, f"tools.{i}")
        tool_names.append(name)
    if len(set(tool_names)) != len(tool_names):
        raise Refused("tools: Tool names must be unique.")
    system = request.get("system")
    if isinstance(system, list):
        for i, block in enumerate(system):
            if not isinstance(block, dict) or block.get("type") != "text":
                raise Refused(f"system.{i}.type: Input should be 'text'")
            _text(block, f"system.{i}")
            cache_blocks += _cache_mark(block, f"system.{i}")
    elif system is not None and not isinstance(system, str):
        raise Refused("system: Input should be a valid string or a list of text blocks")
    choice = request.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "tool" and choice.get("name") not in tool_names:
        raise Refused(f"tool_choice.name: tool {choice.get('name')!r} is not among the tools")
    if messages[0].get("role") != "user" if isinstance(messages[0], dict) else True:
        raise Refused('messages: first message must use the "user" role')
    pending: list[str] = []  # tool_use ids of the previous assistant message
    seen_ids: set[str] = set()
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise Refused(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        role = message["role"]
        if i and messages[i - 1].get("role") == role:
            raise Refused(
                f'messages: roles must alternate between "user" and "assistant", but found multiple "{role}" '
                f"roles in a row")
        content = message.get("content")
        last = i == len(messages) - 1
        if isinstance(content, str):
            if not content.strip() and not (last and role == "assistant"):
                raise Refused(f"messages.{i}: all messages must have non-empty content except for the optional "
                              f"final assistant message")
            blocks: list[Any] = []
        elif isinstance(content, list):
            if not content and not (last and role == "assistant"):
                raise Refused(f"messages.{i}: all messages must have non-empty content except for the optional "
                              f"final assistant message")
            blocks = content
        else:
            raise Refused(f"messages.{i}.content: Input should be a valid string or a list of content blocks")
        answered: list[str] = []
        others = False
        for j, block in enumerate(blocks):
            where = f"messages.{i}.content.{j}"
            if not isinstance(block, dict):
                raise Refused(f"{where}: Input should be an object")
            kind = block.get("type")
            cache_blocks += _cache_mark(block, where)
            if kind == "text":
                _text(block, where)
                others = True
            elif kind == "tool_use":
                if role != "assistant":
                    raise Refused(f"{where}: `tool_use` blocks can only be in assistant messages")
                tid = block.get("id")
                if not isinstance(tid, str) or not tid:
                    raise Refused(f"{where}.id: Field required")
                if tid in seen_ids:
                    raise Refused(f"{where}: `tool_use` ids must be unique: {tid}")
                seen_ids.add(tid)
                name = block.get("name")
                if not isinstance(name, str) or not TOOL_NAME.match(name):
                    raise Refused(f"{where}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'")
                if not isinstance(block.get("input"), dict):
                    raise Refused(f"{where}.input: Input should be a valid dictionary")
            elif kind == "tool_result":
                if role != "user":
                    raise Refused(f"{where}: `tool_result` blocks can only be in user messages")
                if others:
                    raise Refused(f"{where}: `tool_result` blocks must come first in a user message, before any "
                                  f"other content")
                tid = block.get("tool_use_id")
                if tid not in pending:
                    raise Refused(
                        f"{where}: unexpected `tool_use_id` found in `tool_result` blocks: {tid}. Each "
                        f"`tool_result` block must have a corresponding `tool_use` block in the previous message.")
                inner = block.get("content")
                if isinstance(inner, str):
                    pass
                elif isinstance(inner, list):
                    for k, part in enumerate(inner):
                        if not isinstance(part, dict) or part.get("type") != "text":
                            raise Refused(f"{where}.content.{k}.type: Input should be 'text'")
                        _text(part, f"{where}.content.{k}")
                elif inner is not None:
                    raise Refused(f"{where}.content: Input should be a valid string or a list of blocks")
                answered.append(tid)
            else:
                raise Refused(f"{where}.type: Input tag {kind!r} found using 'type' does not match any of the "
                              f"expected tags: 'text', 'tool_use', 'tool_result'")
        if pending:
            missing = [t for t in pending if t not in answered]
            if role != "user" or missing:
                raise Refused(
                    f"messages.{i - 1}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                    f"{', '.join(missing or pending)}. Each `tool_use` block must have a corresponding "
                    f"`tool_result` block in the next message.")
        pending = [b["id"] for b in blocks if b.get("type") == "tool_use"] if role == "assistant" else []
    if cache_blocks > MAX_CACHE_BLOCKS:
        raise Refused(f"A maximum of {MAX_CACHE_BLOCKS} blocks with cache_control may be provided. "
                      f"Found {cache_blocks}.")
    if context_tokens is not None:
        total = prompt_tokens(request)
        if total + max_tokens > context_tokens:
            raise Refused(f"input length and `max_tokens` exceed context limit: {total} + {max_tokens} > "
                          f"{context_tokens}, decrease input length or `max_tokens` and try again")


def _text(block: dict[str, Any], where: str) -> None:
    text = block.get("text")
    if not isinstance(text, str):
        raise Refused(f"{where}.text: Field required")
    if not text:
        raise Refused("messages: text content blocks must be non-empty")
    if not text.strip():
        raise Refused("messages: text content blocks must contain non-whitespace text")


def _cache_mark(block: dict[str, Any], where: str) -> int:
    mark = block.get("cache_control")
    if mark is None:
        return 0
    if not isinstance(mark, dict) or mark.get("type") != "ephemeral":
        raise Refused(f"{where}.cache_control.type: Input should be 'ephemeral'")
    return 1


# --- OpenAI -------------------------------------------------------------------------------------------------


def check_openai(request: Any, context_tokens: int | None = None) -> None:
    """Raise ``Refused`` for a request OpenAI chat completions refuses (see the module docstring)."""
    if not isinstance(request, dict):
        raise Refused("We could not parse the JSON body of your request.", None, None)
    if not isinstance(request.get("model"), str) or not request["model"]:
        raise Refused("you must provide a model parameter", "model", "missing_required_parameter")
    for key in ("max_tokens", "max_completion_tokens"):
        value = request.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise Refused(f"Invalid '{key}': integer below minimum value. Expected a value >= 1.", key,
                          "integer_below_min_value")
    names: list[str] = []
    tools = request.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise Refused("Invalid type for 'tools': expected an array.", "tools", "invalid_type")
        if len(tools) > 128:
            raise Refused(f"Invalid 'tools': array too long. Expected an array with maximum length 128, but got "
                          f"an array with length {len(tools)} instead.", "tools", "array_above_max_length")
        for i, tool in enumerate(tools):
            fn = tool.get("function") if isinstance(tool, dict) else None
            if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(fn, dict):
                raise Refused(f"Missing required parameter: 'tools[{i}].function'.", f"tools[{i}].function",
                              "missing_required_parameter")
            name = fn.get("name")
            if not isinstance(name, str) or not TOOL_NAME.match(name):
                raise Refused(f"Invalid 'tools[{i}].function.name': string does not match pattern. Expected a "
                              f"string that matches the pattern '^[a-zA-Z0-9_-]{{1,64}}$'.",
                              f"tools[{i}].function.name", "invalid_value")
            params = fn.get("parameters")
            if params is not None and (not isinstance(params, dict) or params.get("type") != "object"):
                raise Refused(f"Invalid schema for function '{name}': schema must be a JSON Schema of "
                              f"'type: \"object\"', got 'type: \"{(params or {}).get('type')}\"'.",
                              f"tools[{i}].function.parameters", "invalid_function_parameters")
            names.append(name)
        if len(set(names)) != len(names):
            raise Refused("Invalid 'tools': function names must be unique.", "tools", "invalid_value")
    choice = request.get("tool_choice")
    if isinstance(choice, dict):
        chosen = (choice.get("function") or {}).get("name")
        if chosen not in names:
            raise Refused(f"Invalid value for 'tool_choice': function {chosen!r} is not among the tools.",
                          "tool_choice", "invalid_value")
    messages = request.get("messages")
    if not isinstance(messages, list):
        raise Refused("Missing required parameter: 'messages'.", "messages", "missing_required_parameter")
    if not messages:
        raise Refused("Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty "
                      "array instead.", "messages", "empty_array")
    pending: list[str] = []
    opened_at = -1
    for i, message in enumerate(messages):
        where = f"messages.[{i}]"
        if not isinstance(message, dict) or message.get("role") not in OPENAI_ROLES:
            role = message.get("role") if isinstance(message, dict) else None
            raise Refused(f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', 'tool', "
                          f"and 'developer'.", f"{where}.role", "invalid_value")
        role = message["role"]
        if role == "tool":
            tid = message.get("tool_call_id")
            if tid not in pending:
                raise Refused("Invalid parameter: messages with role 'tool' must be a response to a preceeding "
                              "message with 'tool_calls'.", f"{where}.role", None)
            pending.remove(tid)
            if not isinstance(message.get("content"), str | list):
                raise Refused(f"Invalid value for 'content': expected a string, got "
                              f"{_json_type(message.get('content'))}.", f"{where}.content", None)
            continue
        if pending:
            raise Refused(
                "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
                f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(pending)}",
                f"messages.[{opened_at}].role", None)
        content = message.get("content")
        if role == "assistant":
            calls = message.get("tool_calls")
            if content is None and not calls:
                raise Refused("Invalid value for 'content': expected a string, got null.", f"{where}.content", None)
            if content is not None and not isinstance(content, str | list):
                raise Refused(f"Invalid type for '{where}.content': expected a string.", f"{where}.content",
                              "invalid_type")
            for j, call in enumerate(calls or []):
                at = f"{where}.tool_calls.[{j}]"
                fn = call.get("function") if isinstance(call, dict) else None
                if not isinstance(call, dict) or not isinstance(call.get("id"), str) or not call["id"]:
                    raise Refused(f"Missing required parameter: '{at}.id'.", f"{at}.id", "missing_required_parameter")
                if call.get("type") != "function" or not isinstance(fn, dict):
                    raise Refused(f"Missing required parameter: '{at}.function'.", f"{at}.function",
                                  "missing_required_parameter")
                if not isinstance(fn.get("name"), str) or not TOOL_NAME.match(fn["name"]):
                    raise Refused(f"Invalid '{at}.function.name': string does not match pattern. Expected a string "
                                  f"that matches the pattern '^[a-zA-Z0-9_-]{{1,64}}$'.", f"{at}.function.name",
                                  "invalid_value")
                if not isinstance(fn.get("arguments"), str):
                    raise Refused(f"Invalid type for '{at}.function.arguments': expected a string, but got "
                                  f"{_json_type(fn.get('arguments'))} instead.", f"{at}.function.arguments",
                                  "invalid_type")
            pending = [c["id"] for c in calls or []]
            opened_at = i
        else:  # system, developer, user
            if isinstance(content, str):
                if role == "user" and not content:
                    raise Refused(f"Invalid '{where}.content': string too short. Expected a string with minimum "
                                  f"length 1, but got an empty string instead.", f"{where}.content",
                                  "string_below_min_length")
            elif isinstance(content, list):
                if not content:
                    raise Refused(f"Invalid '{where}.content': empty array. Expected an array with minimum length "
                                  f"1, but got an empty array instead.", f"{where}.content", "empty_array")
            else:
                raise Refused(f"Invalid value for 'content': expected a string, got {_json_type(content)}.",
                              f"{where}.content", None)
    if pending:
        raise Refused(
            "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
            f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(pending)}",
            f"messages.[{opened_at}].role", None)
    if context_tokens is not None:
        total = prompt_tokens(request)
        wanted = request.get("max_tokens") or request.get("max_completion_tokens") or 0
        if total + wanted > context_tokens:
            raise Refused(
                f"This model's maximum context length is {context_tokens} tokens. However, you requested "
                f"{total + wanted} tokens ({total} in the messages, {wanted} in the completion). Please reduce the "
                f"length of the messages or completion.", "messages", "context_length_exceeded")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), type(value).__name__)
