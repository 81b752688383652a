"""Model tools generated from the action vocabulary (``market.actions``), and back.

One tool per action type; the tool's input schema is the action's own pydantic
schema without the ``type`` discriminator (the tool's name says it). A tool call
becomes an action through ``parse_action``, so validation is the market's own.
"""

from __future__ import annotations

import json
import math
from functools import cache
from typing import Any

import orjson
from pydantic import ValidationError

from market.actions import ACTION_TYPES, Action, action_name, parse_action

MAX_ARGUMENTS = 64 * 1024  # characters of a tool call's arguments; a longer one is not read


class ToolCallError(ValueError):
    """A tool call that is not a valid action; the message names the field and the reason."""


class HostileJson(ValueError):
    """Tool arguments no sane answer has (a number of thousands of digits, nesting thousands deep, megabytes):
    not read, not repaired; the trader's turn fails with ``hostile_json``."""


def parse_arguments(name: str, text: str) -> Any:
    """Tool arguments given as JSON text, read with bounds (orjson: 64-bit numbers, nesting at most 1024
    deep); ``HostileJson`` past the bounds, ``ToolCallError`` for ordinary bad JSON."""
    if len(text) > MAX_ARGUMENTS:
        raise HostileJson(f"{name}: the arguments are {len(text):,} characters long (at most {MAX_ARGUMENTS:,})")
    if not text.strip():
        return {}
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        why = _hostile(text)
        if why is not None:
            raise HostileJson(f"{name}: the arguments cannot be read safely ({why})") from None
        raise ToolCallError(f"{name}: the arguments are not valid JSON ({exc.msg} at position {exc.pos})") from None


class _Overflow(ValueError):
    """A JSON number past a 64-bit float (thousands of digits)."""


def _finite(digits: str) -> float:
    if len(digits) > 400 or math.isinf(float(digits)):  # the longest finite double is about 330 characters
        raise _Overflow(digits)
    return 0.0


def _no_constant(word: str) -> None:
    raise ValueError(word)  # NaN and Infinity are not JSON: ordinary bad JSON


def _hostile(text: str) -> str | None:
    """Why ``text``, which orjson refused, is hostile (nesting about a thousand deep, a number past a 64-bit
    float), or None for ordinary bad JSON. Found by reading it again with the standard library's parser and
    hooks on its numbers (orjson says why only in English, in one exception type for every reason)."""
    try:
        json.loads(text, parse_int=_finite, parse_float=_finite, parse_constant=_no_constant)
    except RecursionError:
        return "nested too deep"
    except _Overflow:
        return "a number too large for a 64-bit float"
    except ValueError:
        return None
    return None


@cache
def tool_specs() -> tuple[dict[str, Any], ...]:
    """``(name, description, input_schema)`` per action, derived from ``market.actions``."""
    specs = []
    for action_type in ACTION_TYPES:
        schema = action_type.model_json_schema()
        schema.pop("title", None)
        props = {k: _clean(v) for k, v in schema.get("properties", {}).items() if k != "type"}
        required = [r for r in schema.get("required", []) if r != "type"]
        input_schema: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
        if required:
            input_schema["required"] = required
        specs.append({
            "name": action_name(action_type),
            "description": " ".join((action_type.__doc__ or "").split()),
            "input_schema": input_schema,
        })
    return tuple(specs)


def _clean(prop: dict[str, Any]) -> dict[str, Any]:
    prop = {k: v for k, v in prop.items() if k != "title"}
    if prop.get("type") == "integer" and "cents" in prop.get("description", ""):
        prop["minimum"] = 1
    return prop


def tool_names() -> tuple[str, ...]:
    """The tools' names, one per action type, in ``tool_specs`` order."""
    return tuple(spec["name"] for spec in tool_specs())


def anthropic_tools() -> list[dict[str, Any]]:
    """Tools in the Anthropic Messages API shape (the last one carries the cache breakpoint)."""
    tools = [dict(spec) for spec in tool_specs()]
    tools[-1]["cache_control"] = {"type": "ephemeral"}
    return tools


def openai_tools() -> list[dict[str, Any]]:
    """Tools in the OpenAI chat completions shape."""
    return [
        {"type": "function", "function": {
            "name": s["name"], "description": s["description"], "parameters": s["input_schema"],
        }}
        for s in tool_specs()
    ]


def _money_fields(name: str) -> set[str]:
    spec = next(s for s in tool_specs() if s["name"] == name)
    return {k for k, v in spec["input_schema"]["properties"].items() if v.get("type") == "integer"}


def _shown(value: Any) -> str:
    """A wrong value as the error quotes it: JSON when it is JSON (clipped), else its Python type's name."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):  # bytes, sets, objects, cycles: no JSON spelling
        return f"a Python {type(value).__name__}"
    return text if len(text) <= 80 else text[:77] + "..."


def to_action(name: str, arguments: Any) -> Action:
    """The action a tool call asks for; ``ToolCallError`` says what is wrong with it.

    ``arguments`` is the tool input: a dict (Anthropic) or a JSON string (OpenAI).
    Amounts must be JSON integers of cents: "$12.50" or 12.5 are refused rather than
    guessed at, because a model that writes text may have meant dollars. Any other Python
    value (bytes, a set, an object, a cycle) is a ``ToolCallError`` naming the field, never a ``TypeError``.
    """
    if name not in tool_names():
        raise ToolCallError(f"unknown tool {name!r}; the tools are: {', '.join(tool_names())}")
    if isinstance(arguments, str):
        arguments = parse_arguments(name, arguments)
    if not isinstance(arguments, dict):
        raise ToolCallError(f"{name}: the arguments must be a JSON object, got {type(arguments).__name__}")
    for field in sorted(_money_fields(name) & arguments.keys()):
        value = arguments[field]
        if isinstance(value, bool) or not isinstance(value, int):
            raise ToolCallError(
                f"{name}.{field}: must be a whole number of cents (1250 means $12.50), got {_shown(value)}"
            )
    if "type" in arguments and arguments["type"] != name:
        raise ToolCallError(f"{name}.type: unknown field (the tool name already says the action)")
    try:
        return parse_action({**arguments, "type": name})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"] if p != name)
            msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"{name}.{loc}: {msg}" if loc else f"{name}: {msg}")
        raise ToolCallError("; ".join(problems)) from None
