"""Serving the app: Socket Mode (the default) or HTTP under uvicorn.

HTTP mode is an ASGI app: ``POST /slack/events`` is Bolt's (signatures checked,
each request dispatched on a worker thread so a slow listener never holds the
event loop), ``GET /healthz`` says whether the bot is up and the week's state.
uvicorn serves it (many connections, slow clients do not block others). On
SIGTERM or SIGINT uvicorn stops accepting connections and finishes the requests
in flight; then the handler's pool finishes the work handed over, the host
stops the engine and leaves unsent messages in the outbox, and the process
exits 0. In Socket Mode every envelope is acknowledged, also those no listener
takes, so Slack does not deliver them again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.socket_mode.internals import run_bolt_app, send_response
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk import WebClient

from slackbot.app import DealHandler, admins_note, build_app
from slackbot.host import Host
from slackbot.payload import body_problem
from slackbot.signing import Door

log = logging.getLogger("slackbot.serve")
EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
MAX_BODY = 1_000_000  # Slack's payloads are far smaller
BODY_TIMEOUT = 10.0  # seconds a request's body may take to arrive
HEADER_TIMEOUT = 10.0  # seconds a connection may take to send a request's headers
# connections open at once: beyond it uvicorn answers every new request 503 until some close, so it is
# twice the 200 simultaneous requests of benchmarks/slack_http.py
LIMIT_CONCURRENCY = 400


class SlackAsgi:
    """The ASGI application for HTTP mode (Bolt's sync ``App`` run on a thread pool).

    With a ``door`` the signature is checked (and replays dropped) before the body is parsed; a body
    must arrive within ``body_timeout`` seconds (408) and be at most ``MAX_BODY`` bytes (413).
    """

    def __init__(self, app: App, host: Host, *, door: Door | None = None, threads: int = 32,
                 body_timeout: float = BODY_TIMEOUT) -> None:
        self.app = app
        self.host = host
        self.door = door
        self.body_timeout = body_timeout
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="slackbot-http")
        self.draining = False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    self.draining = True
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        if method == "GET" and path == HEALTH_PATH:
            state = self.host.store.get("state") or "waiting"
            ok = not self.draining and self.host.error is None
            await _send(send, 200 if ok else 503, {"ok": ok, "state": state, "queued": self.host.poster.pending})
            return
        if method != "POST" or path != EVENTS_PATH:
            await _send(send, 404, {"error": "not found"})
            return
        if self.draining:
            await _send(send, 503, {"error": "shutting down"})
            return
        headers: dict[str, list[str]] = {}
        for name, value in scope.get("headers", []):
            headers.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
        length = (headers.get("content-length") or ["0"])[0]
        if length.isdigit() and int(length) > MAX_BODY:
            await _send(send, 413, {"error": "request too large"})
            return
        try:
            body = await asyncio.wait_for(_read_body(receive), self.body_timeout)
        except TimeoutError:
            await _send(send, 408, {"error": "the body took too long to arrive"})
            return
        if body is None:
            await _send(send, 413, {"error": "request too large"})
            return
        if self.door is not None:  # the signature first: nothing unsigned is parsed
            refusal = self.door.check(headers, body)
            if refusal is not None:
                await _send(send, refusal.status, {"error": refusal.error} if refusal.error else {})
                return
        text = body.decode("utf-8", "replace")
        content_type = (headers.get("content-type") or [""])[0].split(";")[0]
        problem = body_problem(text, content_type)
        if problem is not None:
            await _send(send, 400, {"error": problem})
            return
        query = scope.get("query_string", b"").decode("latin-1")
        request = BoltRequest(body=text, query=query, headers=headers)
        loop = asyncio.get_running_loop()
        response: BoltResponse = await loop.run_in_executor(self.pool, self.app.dispatch, request)
        raw = response.body.encode("utf-8") if isinstance(response.body, str) else bytes(response.body or b"")
        out = [(k.encode("latin-1"), v.encode("latin-1")) for k, vs in response.headers.items() for v in vs]
        await send({"type": "http.response.start", "status": response.status, "headers": out})
        await send({"type": "http.response.body", "body": raw})

    def close(self) -> None:
        """Stop taking requests into the thread pool and wait for the dispatches in flight to finish."""
        self.pool.shutdown(wait=True)


async def _read_body(receive: Any) -> bytes | None:
    """The request's body, or None once it grows past ``MAX_BODY``."""
    body = bytearray()
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
        if len(body) > MAX_BODY:
            return None
    return bytes(body)


async def _send(send: Any, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})


def http_server(asgi: SlackAsgi, host: str, port: int, *, backlog: int = 2048,
                limit_concurrency: int = LIMIT_CONCURRENCY, header_timeout: float = HEADER_TIMEOUT) -> Any:
    """A uvicorn server for ``asgi`` (``.run()`` blocks until SIGTERM/SIGINT, then drains).

    While ``limit_concurrency`` connections are open new requests get 503, an idle keep-alive
    connection is closed after 5 s, and a request's headers must arrive within ``header_timeout`` s.
    """
    import uvicorn

    config = uvicorn.Config(asgi, host=host, port=port, lifespan="on", access_log=False, log_level="warning",
                            backlog=backlog, timeout_keep_alive=5, timeout_graceful_shutdown=20,
                            limit_concurrency=limit_concurrency, http=_header_deadline_protocol(header_timeout))
    return uvicorn.Server(config)


def _header_deadline_protocol(timeout: float) -> type[Any]:
    """uvicorn's h11 protocol, but a connection that has not begun a request ``timeout`` s after it
    opened (or after its last response) is closed: uvicorn has no such limit, and a client trickling
    headers (or one byte after a response) would hold its connection forever."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderDeadline(H11Protocol):
        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()

        def _arm(self) -> None:
            self.loop.call_later(timeout, self._expire, self.cycle)

        def _expire(self, cycle: Any) -> None:
            idle = self.cycle is cycle and (cycle is None or cycle.response_complete)
            if idle and not self.transport.is_closing():
                self.transport.close()

    return HeaderDeadline


class AckingSocketModeHandler:
    """Bolt's Socket Mode handler, but every envelope is acknowledged, also those no listener took."""

    def __init__(self, app: App, app_token: str) -> None:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        outer = self

        class _Handler(SocketModeHandler):
            def handle(self, client: Any, req: Any) -> None:  # type: ignore[override]
                import time

                start = time.time()
                response = run_bolt_app(outer.app, req)
                if response.status != 200:  # e.g. 404: no listener; Slack would deliver it again
                    response = BoltResponse(status=200, body="")
                send_response(client, req, response, start)

        self.app = app
        self.handler = _Handler(app, app_token)

    def connect(self) -> None:
        """Open the Socket Mode connection (without blocking); envelopes are handled on Bolt's threads."""
        self.handler.connect()

    def close(self) -> None:
        """Close the Socket Mode connection."""
        self.handler.close()


def serve(scenario: Path, client: WebClient, *, out: Path | None, speed: float, pace: float, http: bool,
          host_name: str = "0.0.0.0", port: int = 3000, admins: Sequence[str] = ()) -> int:
    """Run the live week until SIGTERM/SIGINT (Socket Mode, or HTTP with signature checks); exit code."""
    secret = os.environ.get("SLACK_SIGNING_SECRET")
    app_token = os.environ.get("SLACK_APP_TOKEN")
    if http and not secret:
        raise SystemExit("error: HTTP mode needs SLACK_SIGNING_SECRET in the environment")
    if not http and not app_token:
        raise SystemExit("error: Socket Mode needs SLACK_APP_TOKEN (xapp-...) in the environment")
    host = Host(scenario, client, out=out, speed=speed, pace=pace, admins=admins)
    log.info("hosting %s in %s (run folder %s)", host.scenario.name, host.market_name, host.folder.path)
    note = admins_note(host.admins)
    if note:
        log.warning(note)
        print(f"warning: {note}", flush=True)
    handler = DealHandler(host, client)
    try:
        if http:
            asgi = SlackAsgi(build_app(host, client, signing_secret=secret, handler=handler), host,
                             door=Door(str(secret)))
            # uvicorn takes SIGTERM/SIGINT while it runs (stop accepting, drain), then restores these
            # handlers and raises the signal again: ours just note it, so the shutdown below completes
            stopped = threading.Event()
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: stopped.set())
            try:
                http_server(asgi, host_name, port).run()
            finally:
                asgi.close()
            return 0
        socket = AckingSocketModeHandler(build_app(host, client, handler=handler), str(app_token))
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        socket.connect()
        try:
            stop.wait()
        finally:
            socket.close()
        return 0
    finally:
        handler.close()
        host.close()
