"""The local web server: the page, a server-sent-events stream of snapshots, and the controls.

Starlette routes the four paths and streams the events; uvicorn (the Slack HTTP mode's
server too) serves them on its own event loop in a background thread, so a page holding
its event stream open costs a coroutine, never a thread. The page is one document
(``page.page_html``: its HTML, CSS and JavaScript files with plotly.js inlined), so it
needs no network.

Kept as a local development server should be: it answers only to the host names it is
served on (403: a DNS-rebinding page names its own), takes a control only as a JSON POST
(415) from its own page (403: a cross-site form or a text/plain fetch needs no CORS
preflight, so any page could otherwise drive the run) whose body has one Content-Length
(400 for a bad one, 411 for none or a chunked body) of at most ``MAX_BODY`` bytes (413,
unread). A connection has ``REQUEST_TIMEOUT`` seconds from when it opens or its last
answer ends to send a whole request, and as long to read on from an answer it has let
pile up; past either it is closed. At most ``MAX_STREAMS`` event streams (503) and
``MAX_CONNECTIONS`` connections (uvicorn's ``limit_concurrency``: a request beyond it is
answered 503 by uvicorn) are served at once. Every other refusal is a JSON
``{"error": ...}`` that says why, h11's own (a malformed request) included.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import json
import math
import re
import socket
import sys
import threading
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from http import HTTPStatus
from typing import Any

import h11
import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from market.scenario import clipped, quoted
from watch.controls import ControlError, Controls
from watch.hub import Hub
from watch.page import page_html

KEEPALIVE = 10.0
REQUEST_TIMEOUT = 30.0
MAX_STREAMS = 64
MAX_CONNECTIONS = 256
MAX_BODY = 4096
MAX_HEAD = 16_384  # a request's line and headers (h11's default)
STOP_TIMEOUT = 5
NO_STORE = {"Cache-Control": "no-store"}
_FAILED = "the watch server failed on this request; its terminal has the details"
_HOST = re.compile(r"(?P<name>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[0-9]{1,5}))?")


class WatchError(ValueError):
    """Bad input for watching (a folder that is not a run, a port in use)."""


class WatchServer:
    """Serves one watched run from a background thread; ``url`` says where.

    ``request_timeout`` (seconds) bounds how long a connection takes to send a whole request and how long it
    leaves an answer unread; ``max_streams`` bounds the event streams open at once, ``max_connections`` the
    connections served. Raises ``WatchError`` when it cannot serve on ``host:port`` (in use, no such address).
    """

    def __init__(self, hub: Hub, controls: Controls, host: str = "127.0.0.1", port: int = 0, *,
                 request_timeout: float = REQUEST_TIMEOUT, max_streams: int = MAX_STREAMS,
                 max_connections: int = MAX_CONNECTIONS) -> None:
        self.hub, self.controls, self.page = hub, controls, page_html()
        self.request_timeout, self.max_streams = request_timeout, max_streams
        self._streams = 0  # counted on the server's event loop only
        self._news = asyncio.Event()  # set (and replaced) on the loop when the hub has news
        self._socket = _bind(host, port)
        self.server_address: tuple[str, int] = self._socket.getsockname()[:2]
        bound = ipaddress.ip_address(self.server_address[0])
        self._any_address = bound.is_unspecified
        names = {_bracketed(host.lower()), _bracketed(str(bound))}
        if bound.is_loopback or self._any_address:
            names |= {"localhost", "127.0.0.1", "[::1]"}
        self._names = frozenset(names - {""})
        # limit_concurrency counts the connection asking too: one more lets max_connections be served
        config = uvicorn.Config(self._app(), lifespan="off", ws="none", proxy_headers=False, server_header=False,
                                log_config=None, log_level="error", access_log=False,
                                http=_connection(request_timeout), timeout_keep_alive=math.ceil(request_timeout),
                                limit_concurrency=max_connections + 1, timeout_graceful_shutdown=STOP_TIMEOUT)
        self._server = _Uvicorn(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The page's address, e.g. ``http://127.0.0.1:8000/``."""
        host, port = self.server_address
        return f"http://{host}:{port}/"

    @property
    def hosts(self) -> list[str]:
        """The Host headers this server answers to (any IP address too when it serves on all of them)."""
        port = self.server_address[1]
        return sorted(f"{name}:{port}" for name in self._names)

    def answers_to(self, host: str | None) -> bool:
        """Whether ``host`` (a request's Host header) names this server: a name it serves on, with its port."""
        match = _HOST.fullmatch(host or "")
        if match is None:
            return False
        name, port = match["name"].lower(), int(match["port"] or 80)
        if port != self.server_address[1]:
            return False
        return name in self._names or (self._any_address and _is_address(name))

    def start(self) -> WatchServer:
        """Serve from a daemon thread (the socket already listens: a request sent at once waits for it)."""
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), name="watch-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the hub (ending the event streams) and stop serving; connections still open after
        ``STOP_TIMEOUT`` seconds are cut."""
        self.hub.close()
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT)
            self._server.force_exit = True
            self._thread.join(STOP_TIMEOUT)
        self._socket.close()

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()

        def news() -> None:  # called in the thread that published
            with contextlib.suppress(RuntimeError):  # the loop has closed: no stream is left to wake
                loop.call_soon_threadsafe(self._wake)

        unsubscribe = self.hub.subscribe(news)
        try:
            await self._server.serve(sockets=[self._socket])
        finally:
            unsubscribe()

    def _wake(self) -> None:
        news, self._news = self._news, asyncio.Event()
        news.set()

    # --- the app ------------------------------------------------------------------------------------------
    def _app(self) -> Starlette:
        get, post = ["GET"], ["POST"]  # Starlette answers HEAD wherever GET is allowed
        routes = [Route("/", self._page, methods=get), Route("/state", self._state, methods=get),
                  Route("/events", self._events, methods=get), Route("/control", self._control, methods=post)]
        return Starlette(routes=routes, middleware=[Middleware(_Guard), Middleware(_OwnHost, server=self)],
                         exception_handlers={HTTPException: _refused})

    async def _page(self, request: Request) -> Response:
        return Response(self.page, media_type="text/html; charset=utf-8", headers=NO_STORE)

    async def _state(self, request: Request) -> Response:
        return Response(self.hub.latest()[1], media_type="application/json", headers=NO_STORE)

    async def _events(self, request: Request) -> Response:
        """Server-sent events: every new snapshot as it is published (at most ``max_streams`` at once)."""
        if self._streams >= self.max_streams:
            raise HTTPException(HTTPStatus.SERVICE_UNAVAILABLE, f"too many pages open: this server holds at most "
                                f"{self.max_streams} event streams; close a page and reload")
        if request.method == "HEAD":
            return Response(media_type="text/event-stream", headers=NO_STORE)
        self._streams += 1
        return _EventStream(self._snapshots(), self._stream_closed)

    def _stream_closed(self) -> None:
        self._streams -= 1

    async def _snapshots(self) -> AsyncIterator[str]:
        """The newest snapshot whenever there is one, a keep-alive comment every ``KEEPALIVE`` seconds."""
        seen = 0
        while True:
            news = self._news  # taken before reading the hub: a publish after the read sets it
            version, snapshot = self.hub.latest()
            if version > seen:
                seen = version
                yield f"data: {snapshot}\n\n"
            elif self.hub.closed:
                return
            else:
                try:
                    await asyncio.wait_for(news.wait(), KEEPALIVE)
                except TimeoutError:
                    yield ": keep-alive\n\n"

    async def _control(self, request: Request) -> Response:
        """A JSON control from the page itself, e.g. ``{"action": "pause"}``."""
        own, origin = f"http://{request.headers['Host']}", request.headers.get("Origin")
        if origin is not None and origin.lower() != own.lower():
            raise HTTPException(HTTPStatus.FORBIDDEN, f"refused: a control from the page at {quoted(origin)}; "
                                f"only this server's own page ({own}) sends controls")
        kind = request.headers.get("Content-Type")
        if (kind or "").split(";")[0].strip().lower() != "application/json":
            raise HTTPException(HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                                f"send a control as Content-Type: application/json (not {quoted(kind)})")
        length = request.headers.get("Content-Length")  # one run of digits: h11 answers 400 to any other
        if length is None or "Transfer-Encoding" in request.headers:
            raise HTTPException(HTTPStatus.LENGTH_REQUIRED,
                                "a control needs a Content-Length (a chunked body is not read)")
        if int(length) > MAX_BODY:
            raise HTTPException(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                                f"a control is at most {MAX_BODY:,} bytes; this one is {int(length):,}")
        try:
            body = json.loads(await request.body())
        except (ValueError, RecursionError) as exc:
            raise HTTPException(HTTPStatus.BAD_REQUEST, f"the body is not JSON ({quoted(str(exc), str)})") from None
        if not isinstance(body, dict):
            raise HTTPException(HTTPStatus.BAD_REQUEST, "send a JSON object like {\"action\": \"pause\"}")
        try:
            self.controls.apply(body)
        except ControlError as exc:
            raise HTTPException(HTTPStatus.BAD_REQUEST, str(exc)) from None
        return Response(b'{"ok":true}', media_type="application/json", headers=NO_STORE)


def _bind(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port`` (IPv4, as ``http.server`` served), or a ``WatchError`` saying why not."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise WatchError(f"port {port} on {host} is in use; choose another with --port "
                             "(or leave it out for a free one)") from None
        if isinstance(exc, socket.gaierror) or exc.errno in (errno.EADDRNOTAVAIL, errno.EACCES):
            raise WatchError(f"cannot serve on {host[:253]}:{port} ({exc.strerror or exc})") from None
        raise
    return sock


def _bracketed(name: str) -> str:
    return f"[{name}]" if ":" in name and not name.startswith("[") else name


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def _error(status: int, reason: str, headers: dict[str, str] | None = None) -> Response:
    """``{"error": reason}``, and the connection closed (an unread body must not be taken for a request)."""
    return Response(json.dumps({"error": reason}), status, {**NO_STORE, "Connection": "close", **(headers or {})},
                    media_type="application/json")


async def _refused(request: Request, exc: HTTPException) -> Response:
    """A refusal, Starlette's (no such path, a method not allowed) or the server's own, as JSON."""
    headers, reason, path = dict(exc.headers or {}), exc.detail, request.url.path
    if exc.status_code == HTTPStatus.NOT_FOUND:
        reason = f"nothing at {quoted(path)}; the page is at /"
    elif exc.status_code == HTTPStatus.METHOD_NOT_ALLOWED:
        allowed = sorted(headers["Allow"].split(", "))  # Starlette's order is a set's
        headers["Allow"] = ", ".join(allowed)
        reason = f"{quoted(request.method)} is not allowed on {path}; use {allowed[0]}"
    return _error(exc.status_code, reason, headers)


class _OwnHost:
    """Refuses (403) any request whose Host header does not name this server: a DNS-rebinding page names its own."""

    def __init__(self, app: ASGIApp, server: WatchServer) -> None:
        self.app, self.server = app, server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hosts = [value.decode("latin-1") for name, value in scope.get("headers", ()) if name == b"host"]
        if scope["type"] == "http" and (len(hosts) != 1 or not self.server.answers_to(hosts[0])):
            shown = quoted(hosts[0]) if len(hosts) == 1 else f"({len(hosts)} Host headers)"
            await _error(HTTPStatus.FORBIDDEN, f"refused: Host {shown} is not this server (it answers to "
                         f"{', '.join(self.server.hosts)}; a page elsewhere may not use it)")(scope, receive, send)
            return
        await self.app(scope, receive, send)


class _Guard:
    """An unexpected failure: its traceback to the terminal, a 500 JSON error to the client, and the server goes on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except ClientDisconnect:
            return  # the client went away, or was cut off for sending too slowly: nobody to answer
        except Exception:
            if started:
                raise  # uvicorn logs it and closes the connection: the answer cannot be changed now
            traceback.print_exc(file=sys.stderr)
            await _error(HTTPStatus.INTERNAL_SERVER_ERROR, _FAILED)(scope, receive, send)


class _EventStream(StreamingResponse):
    """A ``text/event-stream`` answer that calls ``closed()`` when it ends, however it ends."""

    def __init__(self, events: AsyncIterator[str], closed: Callable[[], None]) -> None:
        super().__init__(events, media_type="text/event-stream", headers={**NO_STORE, "Connection": "close"})
        self.closed = closed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.closed()


class _Uvicorn(uvicorn.Server):
    """uvicorn's server, leaving SIGINT and SIGTERM to the process it serves in (the run, or ``market watch``)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class _H11(h11.Connection):
    """h11's connection, keeping why it refused a request (uvicorn answers every refusal "Invalid HTTP request")."""

    refusal: h11.RemoteProtocolError | None = None

    def next_event(self) -> Any:
        try:
            event = super().next_event()
            if isinstance(event, h11.Request):  # h11 bounds a head still arriving, not one read at once
                size = len(event.target) + sum(len(name) + len(value) for name, value in event.headers)
                if size > MAX_HEAD:
                    raise h11.RemoteProtocolError("head too long", error_status_hint=431)
        except h11.RemoteProtocolError as exc:
            self.refusal = exc
            raise
        return event


class _Connection(H11Protocol):
    """uvicorn's h11 protocol with this server's deadlines, answering h11's refusals as JSON.

    A connection has ``timeout`` seconds from when it opens or its last answer ends to send a whole request,
    line, headers and body (uvicorn bounds only the wait between requests), and as long to read on when
    its answer has piled up unread; past either it is closed.
    """

    timeout = REQUEST_TIMEOUT

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conn = _H11(h11.SERVER, MAX_HEAD)
        self._answered = self._resumed = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.loop.call_later(self.timeout, self._request_due, self._answered)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._answered += 1
        self.loop.call_later(self.timeout, self._request_due, self._answered)

    def _request_due(self, answered: int) -> None:
        sending = self.conn.their_state in (h11.IDLE, h11.SEND_BODY)  # not done sending the next request
        if answered == self._answered and sending and not self.transport.is_closing():
            self.transport.close()

    def pause_writing(self) -> None:
        super().pause_writing()
        self.loop.call_later(self.timeout, self._write_due, self._resumed)

    def resume_writing(self) -> None:
        super().resume_writing()
        self._resumed += 1

    def _write_due(self, resumed: int) -> None:
        if resumed == self._resumed:
            self.transport.abort()  # close() would wait for the unread answer to be sent

    def send_400_response(self, msg: str) -> None:
        refusal = self.conn.refusal
        status = refusal.error_status_hint if refusal is not None else HTTPStatus.BAD_REQUEST
        if status == HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE:
            reason = f"a request's line and headers are at most {MAX_HEAD:,} bytes"
        else:
            reason = clipped(str(refusal)) if refusal is not None else msg
        body = json.dumps({"error": reason}).encode()
        head = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body)),
                (b"connection", b"close")]
        for event in (h11.Response(status_code=status, headers=head, reason=HTTPStatus(status).phrase.encode()),
                      h11.Data(data=body), h11.EndOfMessage()):
            self.transport.write(self.conn.send(event) or b"")
        self.transport.close()


def _connection(timeout: float) -> type[_Connection]:
    """The protocol with a deadline of ``timeout`` seconds (uvicorn makes one per connection from the class)."""
    return type("WatchConnection", (_Connection,), {"timeout": timeout})
