"""The shape of a signed payload, checked before Bolt reads it.

Bolt's own middleware reads ``payload["view"]["type"]``, ``payload["user"]["id"]``, every action's
``action_id`` and more without checking them: a signed payload with a field of the wrong shape was a
500 and a traceback. Slack always sends these shapes, so anything else is answered 400 naming the field.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

_MAX_NAME = 60  # characters of a field's name quoted back


def body_problem(text: str, content_type: str) -> str | None:
    """Why a signed body cannot be read (as Bolt reads it: JSON, or a form with a JSON ``payload``) or has a
    field Bolt reads in the wrong shape; None when it is fine."""
    data: Any
    try:
        if content_type == "application/json" or text.startswith("{"):
            data = json.loads(text) if text else {}
        elif "payload" in text:
            payload = dict(parse_qsl(text, keep_blank_values=True)).get("payload")
            data = {} if payload is None else json.loads(payload)
        else:
            return None  # a slash command's form: every value is a string
    except (ValueError, RecursionError):
        return "the body is not valid JSON"
    if not isinstance(data, dict):
        return "the body is not a JSON object"
    return shape_problem(data)


def shape_problem(data: dict[str, Any]) -> str | None:
    """The first field of a payload Bolt would trip on, as a sentence; None when all have Slack's shape."""
    checks: list[tuple[str, Any, tuple[type, ...]]] = [
        ("type", data.get("type"), (str,)), ("user", data.get("user"), (dict, str)),
        ("team", data.get("team"), (dict,)), ("channel", data.get("channel"), (dict, str)),
        ("view", data.get("view"), (dict,)), ("actions", data.get("actions"), (list,)),
        ("event", data.get("event"), (dict,)), ("container", data.get("container"), (dict,)),
        ("event_id", data.get("event_id"), (str,)), ("trigger_id", data.get("trigger_id"), (str,)),
        ("response_url", data.get("response_url"), (str,)), ("callback_id", data.get("callback_id"), (str,)),
    ]
    user = data.get("user")
    if isinstance(user, dict):
        checks.append(("user.id", user.get("id", ""), (str,)))
    elif isinstance(user, str) and "event" not in data:
        return "'user' must be an object with an 'id'"  # in payloads; events name the user by id
    view = data.get("view")
    if isinstance(view, dict):
        if "type" not in view:
            return "'view' has no 'type'"
        checks += [("view.type", view.get("type"), (str,)), ("view.callback_id", view.get("callback_id"), (str,)),
                   ("view.state", view.get("state"), (dict,)), ("view.id", view.get("id"), (str,)),
                   ("view.private_metadata", view.get("private_metadata"), (str,))]
        state = view.get("state")
        if isinstance(state, dict):
            checks.append(("view.state.values", state.get("values"), (dict,)))
    for n, action in enumerate(data.get("actions") if isinstance(data.get("actions"), list) else []):
        if not isinstance(action, dict):
            return f"'actions[{n}]' must be an object"
        checks += [(f"actions[{n}].action_id", action.get("action_id"), (str,)),
                   (f"actions[{n}].block_id", action.get("block_id"), (str,)),
                   (f"actions[{n}].type", action.get("type"), (str,))]
    event = data.get("event")
    if isinstance(event, dict):
        checks += [("event.type", event.get("type"), (str,)),
                   ("event.event_ts", event.get("event_ts"), (str,))]
    for name, value, types in checks:
        if value is not None and not isinstance(value, types):
            return f"'{name[:_MAX_NAME]}' must be {' or '.join(_WORDS[t] for t in types)}"
    return None


_WORDS = {str: "a string", dict: "an object", list: "a list"}
