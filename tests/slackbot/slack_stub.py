"""A local stub of the Slack Web API: real HTTP on 127.0.0.1, for the real ``WebClient``.

It keeps channels, members and messages, records every call (method, arguments,
time), and can be told to fail: HTTP 429 with ``Retry-After``, or HTTP 200 with
``{"ok": false, "error": ...}`` (``ratelimited``, ``channel_not_found``,
``not_in_channel``, ...). ``response_url`` posts (``/respond/...``) are recorded too.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    at: float
    auth: str = ""


@dataclass
class Failure:
    method: str
    error: str
    status: int = 200
    retry_after: int | None = None
    times: int = 1
    match: str = ""  # only calls whose arguments, as JSON, contain this (e.g. a button's action id)


@dataclass
class StubState:
    calls: list[Call] = field(default_factory=list)
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> channel
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # channel id -> messages
    failures: list[Failure] = field(default_factory=list)
    delay: float = 0.0  # seconds every call takes (a slow Slack), outside the lock
    socket_url: str = ""  # what apps.connections.open answers (a local Socket Mode server)
    responses: list[dict[str, Any]] = field(default_factory=list)  # response_url posts
    ts: int = 0
    chaos: Chaos | None = None  # random faults on every method
    ephemerals: list[dict[str, Any]] = field(default_factory=list)  # chat.postEphemeral messages
    display_names: dict[str, str] = field(default_factory=dict)  # users.info answers, by user id


@dataclass
class Chaos:
    """Random faults on any method, as Slack gives them: ``rate_limited`` of calls answer HTTP 429 with
    ``Retry-After``, ``transient`` answer HTTP 200 ``{"ok": false, "error": "internal_error"}`` (half)
    or HTTP 503 (half). Seeded, so a run's faults repeat."""

    rate_limited: float = 0.0
    transient: float = 0.0
    retry_after: int = 1
    seed: int = 0
    rng: random.Random = field(init=False)
    injected: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)


class SlackStub:
    """Start with ``SlackStub().start()``; ``base_url`` goes to ``WebClient(base_url=...)``."""

    def __init__(self) -> None:
        self.state = StubState()
        self.lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                if "json" in (self.headers.get("Content-Type") or ""):
                    args = json.loads(raw or "{}")
                else:
                    args = {k: v[0] for k, v in parse_qs(raw).items()}
                    for key in ("blocks", "view", "metadata"):
                        if isinstance(args.get(key), str):
                            args[key] = json.loads(args[key])
                path = self.path.split("?")[0]
                if stub.state.delay:
                    time.sleep(stub.state.delay)
                if path.startswith("/respond/"):
                    with stub.lock:
                        stub.state.responses.append({"path": path, **args})
                    self._send(200, {"ok": True}, {})
                    return
                method = path.removeprefix("/api/").strip("/")
                status, body, headers = stub.handle(method, args, self.headers.get("Authorization", ""))
                self._send(status, body, headers)

            def _send(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self) -> SlackStub:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/api/"

    @property
    def respond_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/respond/"

    # --- scripting ------------------------------------------------------------------------------
    def fail(self, method: str, error: str, *, status: int = 200, retry_after: int | None = None,
             times: int = 1, match: str = "") -> None:
        """Answer the next ``times`` calls of ``method`` (those whose arguments contain ``match``) with ``error``."""
        with self.lock:
            self.state.failures.append(Failure(method, error, status, retry_after, times, match))

    def chaos(self, rate_limited: float, transient: float, *, retry_after: int = 1, seed: int = 0) -> Chaos:
        """Answer a share of every method's calls with a 429 or a transient error, from now on."""
        with self.lock:
            self.state.chaos = Chaos(rate_limited, transient, retry_after, seed)
            return self.state.chaos

    def add_channel(self, name: str, member: bool = True) -> str:
        with self.lock:
            return self._new_channel(name, member)

    def calls(self, method: str | None = None) -> list[Call]:
        with self.lock:
            return [c for c in self.state.calls if method is None or c.method == method]

    def posts(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Messages posted (in order); ``channel`` is an id or a name."""
        with self.lock:
            if channel is None:
                return [m for msgs in self.state.messages.values() for m in msgs]
            cid = self._id(channel)
            return list(self.state.messages.get(cid or "", []))

    def channel_id(self, name: str) -> str | None:
        with self.lock:
            return self._id(name)

    # --- the API ----------------------------------------------------------------------------------
    def handle(self, method: str, args: dict[str, Any], auth: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self.lock:
            self.state.calls.append(Call(method, args, time.monotonic(), auth))
            kind = "Bearer xapp-" if method == "apps.connections.open" else "Bearer xox"
            if not auth.startswith(kind):  # Socket Mode URLs need the app-level token, the rest a bot token
                return 200, {"ok": False, "error": "not_authed"}, {}
            chaos = self.state.chaos
            if chaos is not None and method != "apps.connections.open":
                draw = chaos.rng.random()
                if draw < chaos.rate_limited:
                    chaos.injected += 1
                    return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(chaos.retry_after)}
                if draw < chaos.rate_limited + chaos.transient:
                    chaos.injected += 1
                    if chaos.rng.random() < 0.5:
                        return 503, {"ok": False, "error": "service_unavailable"}, {}
                    return 200, {"ok": False, "error": "internal_error"}, {}
            for failure in self.state.failures:
                if failure.method == method and failure.times > 0 and failure.match in json.dumps(args):
                    failure.times -= 1
                    headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
                    return failure.status, {"ok": False, "error": failure.error}, headers
            handler = getattr(self, "_" + method.replace(".", "_"), None)
            if handler is None:
                return 200, {"ok": False, "error": "unknown_method"}, {}
            body = handler(args)
            return 200, body, {}

    def _id(self, name_or_id: str) -> str | None:
        if name_or_id in self.state.channels:
            return name_or_id
        return next((c["id"] for c in self.state.channels.values() if c["name"] == name_or_id.lstrip("#")), None)

    def _new_channel(self, name: str, member: bool, dm: bool = False) -> str:
        cid = ("D" if dm else "C") + f"{len(self.state.channels) + 1:08d}"
        self.state.channels[cid] = {"id": cid, "name": name, "is_member": member, "is_im": dm}
        self.state.messages[cid] = []
        return cid

    def _next_ts(self) -> str:
        self.state.ts += 1
        return f"1700000000.{self.state.ts:06d}"

    def _apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if not self.state.socket_url:
            return {"ok": False, "error": "invalid_auth"}
        return {"ok": True, "url": self.state.socket_url}

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "user_id": "UBOT", "bot_id": "BBOT", "team_id": "T1", "user": "dealbot"}

    def _conversations_create(self, args: dict[str, Any]) -> dict[str, Any]:
        name = args["name"]
        if self._id(name):
            return {"ok": False, "error": "name_taken"}
        cid = self._new_channel(name, True)
        return {"ok": True, "channel": self.state.channels[cid]}

    def _conversations_list(self, args: dict[str, Any]) -> dict[str, Any]:
        chans = [c for c in self.state.channels.values() if not c["is_im"]]
        start = int(args.get("cursor") or 0)
        limit = int(args.get("limit") or 100)
        page = chans[start : start + limit]
        cursor = str(start + limit) if start + limit < len(chans) else ""
        return {"ok": True, "channels": page, "response_metadata": {"next_cursor": cursor}}

    def _conversations_join(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self.state.channels.get(args["channel"])
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        channel["is_member"] = True
        return {"ok": True, "channel": channel}

    def _conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        user = str(args["users"])
        cid = self._id(f"dm-{user}") or self._new_channel(f"dm-{user}", True, dm=True)
        return {"ok": True, "channel": {"id": cid}}

    def _chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        cid = self._id(str(args.get("channel", "")))
        if cid is None:
            return {"ok": False, "error": "channel_not_found"}
        if not self.state.channels[cid]["is_member"]:
            return {"ok": False, "error": "not_in_channel"}
        if not args.get("text") and not args.get("blocks"):
            return {"ok": False, "error": "no_text"}
        if len(args.get("blocks") or []) > 50:
            return {"ok": False, "error": "invalid_blocks"}
        ts = self._next_ts()
        message = {"ts": ts, "channel": cid, **args}
        self.state.messages[cid].append(message)
        return {"ok": True, "channel": cid, "ts": ts, "message": message}

    def _chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        cid = self._id(str(args.get("channel", "")))
        if cid is None:
            return {"ok": False, "error": "channel_not_found"}
        if not args.get("user"):
            return {"ok": False, "error": "user_not_in_channel"}
        if not args.get("text") and not args.get("blocks"):
            return {"ok": False, "error": "no_text"}
        ts = self._next_ts()
        self.state.ephemerals.append({"message_ts": ts, "channel": cid, **args})
        return {"ok": True, "message_ts": ts}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        cid = self._id(str(args.get("channel", "")))
        found = [m for m in self.state.messages.get(cid or "", []) if m["ts"] == args.get("ts")]
        if not found:
            return {"ok": False, "error": "message_not_found"}
        found[0].update({k: v for k, v in args.items() if k in ("text", "blocks")})
        return {"ok": True, "channel": cid, "ts": args.get("ts")}

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("trigger_id"):
            return {"ok": False, "error": "invalid_trigger_id"}
        if not isinstance(args.get("view"), dict) or args["view"].get("type") != "modal":
            return {"ok": False, "error": "invalid_arguments"}
        return {"ok": True, "view": {"id": f"V{len(self.state.calls)}", **args["view"]}}

    _views_update = _views_open
    _views_push = _views_open

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = str(args.get("user"))
        name = self.state.display_names.get(user, f"Person {user}")
        return {"ok": True, "user": {"id": user, "name": user.lower(),
                                     "profile": {"display_name": name, "real_name": name}}}

    def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("user_id") or (args.get("view") or {}).get("type") != "home":
            return {"ok": False, "error": "invalid_arguments"}
        return {"ok": True, "view": {"id": f"V{len(self.state.calls)}", **args["view"]}}
