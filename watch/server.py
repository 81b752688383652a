"""The local web server: the page, a server-sent-events stream of snapshots, and the controls.

Standard library only (``http.server``): one thread per connection, so a page
holding its event stream open never blocks another. The page is one document
(``page.page_html``: its HTML, CSS and JavaScript files with plotly.js inlined),
so it needs no network.

Kept as a local development server should be: it answers only to the host names
it is served on (a DNS-rebinding page names its own), takes a control only as a
JSON POST of at most ``MAX_BODY`` bytes from its own page (a cross-site form or a
text/plain fetch needs no CORS preflight, so any page could otherwise drive the
run), drops a connection that sends nothing for ``REQUEST_TIMEOUT`` seconds and
holds at most ``MAX_STREAMS`` event streams and ``MAX_CONNECTIONS`` connections
(each a thread) open. Every refusal is a JSON
``{"error": ...}`` that says why.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import json
import re
import socket
import sys
import threading
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from market.scenario import clipped, quoted
from watch.controls import ControlError, Controls
from watch.hub import Hub
from watch.page import page_html

KEEPALIVE = 10.0
REQUEST_TIMEOUT = 30.0
MAX_STREAMS = 64
MAX_CONNECTIONS = 256
MAX_BODY = 4096
ROUTES = {"/": "GET", "/state": "GET", "/events": "GET", "/control": "POST"}
_BUSY_BODY = b'{"error": "too many connections open to this server; try again when some close"}'
_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
         b"Content-Length: %d\r\n\r\n%s" % (len(_BUSY_BODY), _BUSY_BODY))
_HOST = re.compile(r"(?P<name>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[0-9]{1,5}))?")


class WatchError(ValueError):
    """Bad input for watching (a folder that is not a run, a port in use)."""


class WatchServer(ThreadingHTTPServer):
    """Serves one watched run; ``url`` says where.

    ``request_timeout`` (seconds) bounds every blocking read and write on a connection; ``max_streams`` bounds
    the event streams open at once, ``max_connections`` the connections (one thread each).
    """

    daemon_threads = True

    def __init__(self, hub: Hub, controls: Controls, host: str = "127.0.0.1", port: int = 0, *,
                 request_timeout: float = REQUEST_TIMEOUT, max_streams: int = MAX_STREAMS,
                 max_connections: int = MAX_CONNECTIONS) -> None:
        self.hub, self.controls, self.page = hub, controls, page_html()
        self.request_timeout, self.max_streams = request_timeout, max_streams
        self.streams = threading.BoundedSemaphore(max_streams)
        self._connections = threading.BoundedSemaphore(max_connections)
        try:
            super().__init__((host, port), _Handler)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise WatchError(f"port {port} on {host} is in use; choose another with --port "
                                 "(or leave it out for a free one)") from None
            if isinstance(exc, socket.gaierror) or exc.errno in (errno.EADDRNOTAVAIL, errno.EACCES):
                raise WatchError(f"cannot serve on {host[:253]}:{port} ({exc.strerror or exc})") from None
            raise
        bound = ipaddress.ip_address(self.server_address[0])
        self._any_address = bound.is_unspecified
        names = {_bracketed(host.lower()), _bracketed(str(bound))}
        if bound.is_loopback or self._any_address:
            names |= {"localhost", "127.0.0.1", "[::1]"}
        self._names = frozenset(names - {""})
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
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

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        """A thread for the connection, unless ``max_connections`` are open: then a 503 at once, and closed."""
        if not self._connections.acquire(blocking=False):
            request.setblocking(False)  # never hold the thread that accepts: a client not reading misses the answer
            with contextlib.suppress(OSError):
                request.sendall(_BUSY)
                request.recv(65536)  # what has come of the request: unread, closing would reset the connection
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._connections.release()

    def start(self) -> WatchServer:
        self._thread = threading.Thread(target=self.serve_forever, name="watch-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.hub.close()
        self.shutdown()
        self.server_close()


def _bracketed(name: str) -> str:
    return f"[{name}]" if ":" in name and not name.startswith("[") else name


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


class _Refusal(Exception):
    """A request answered with an error status and the reason, as JSON."""

    def __init__(self, status: HTTPStatus, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status, self.reason, self.headers = status, reason, headers or {}


class _Handler(BaseHTTPRequestHandler):
    server: WatchServer
    protocol_version = "HTTP/1.1"
    timeout = REQUEST_TIMEOUT

    def setup(self) -> None:
        self.timeout = self.server.request_timeout  # socketserver sets it on the connection: reads and writes
        super().setup()

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: the terminal shows the run, not every request

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    do_HEAD = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    def _answer(self) -> None:
        """Check the request, route it, and answer: every failure is a JSON error, none an empty reply."""
        self._replied = False
        try:
            self._check_host()
            route = self.path.split("?", 1)[0]
            method = ROUTES.get(route)
            if method is None:
                raise _Refusal(HTTPStatus.NOT_FOUND, f"nothing at {quoted(route)}; the page is at /")
            if self.command != method:
                raise _Refusal(HTTPStatus.METHOD_NOT_ALLOWED,
                               f"{quoted(self.command)} is not allowed on {route}; use {method}", {"Allow": method})
            if route == "/":
                self._send(HTTPStatus.OK, "text/html; charset=utf-8", self.server.page)
            elif route == "/state":
                self._send(HTTPStatus.OK, "application/json", self.server.hub.latest()[1].encode())
            elif route == "/events":
                self._stream()
            else:
                self._control()
        except _Refusal as refusal:
            self._error(refusal.status, refusal.reason, refusal.headers)
        except OSError:  # the client went away, or sent nothing for request_timeout seconds
            self.close_connection = True
        except Exception:
            traceback.print_exc(file=sys.stderr)
            if not self._replied:
                self._error(HTTPStatus.INTERNAL_SERVER_ERROR,
                            "the watch server failed on this request; its terminal has the details")
            self.close_connection = True

    def _check_host(self) -> None:
        hosts = self.headers.get_all("Host") or []
        if len(hosts) != 1 or not self.server.answers_to(hosts[0]):
            shown = quoted(hosts[0]) if len(hosts) == 1 else f"({len(hosts)} Host headers)"
            raise _Refusal(HTTPStatus.FORBIDDEN, f"refused: Host {shown} is not this server "
                           f"(it answers to {', '.join(self.server.hosts)}; a page elsewhere may not use it)")

    def _control(self) -> None:
        """A JSON control from the page itself, e.g. ``{"action": "pause"}``."""
        own = f"http://{self.headers['Host']}"
        origin = self.headers.get("Origin")
        if origin is not None and origin.lower() != own.lower():
            raise _Refusal(HTTPStatus.FORBIDDEN, f"refused: a control from the page at {quoted(origin)}; "
                           f"only this server's own page ({own}) sends controls")
        kind = self.headers.get("Content-Type")
        if self.headers.get_content_type() != "application/json":
            raise _Refusal(HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                           f"send a control as Content-Type: application/json (not {quoted(kind)})")
        body = self._body()
        try:
            request = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise _Refusal(HTTPStatus.BAD_REQUEST, f"the body is not JSON ({quoted(str(exc), str)})") from None
        if not isinstance(request, dict):
            raise _Refusal(HTTPStatus.BAD_REQUEST, "send a JSON object like {\"action\": \"pause\"}")
        try:
            self.server.controls.apply(request)
        except ControlError as exc:
            raise _Refusal(HTTPStatus.BAD_REQUEST, str(exc)) from None
        self._send(HTTPStatus.OK, "application/json", b'{"ok":true}')

    def _body(self) -> bytes:
        """The request's body: at most ``MAX_BODY`` bytes, its length given by one plain Content-Length."""
        lengths = self.headers.get_all("Content-Length") or []
        if "Transfer-Encoding" in self.headers or not lengths:
            raise _Refusal(HTTPStatus.LENGTH_REQUIRED, "a control needs a Content-Length (a chunked body is not read)")
        if len(lengths) != 1 or not re.fullmatch(r"[0-9]{1,10}", lengths[0].strip()):
            raise _Refusal(HTTPStatus.BAD_REQUEST, f"bad Content-Length {quoted(', '.join(lengths))}: "
                           "give the body's size in bytes, once")
        length = int(lengths[0])
        if length > MAX_BODY:
            raise _Refusal(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                           f"a control is at most {MAX_BODY:,} bytes; this one is {length:,}")
        body = self.rfile.read(length)
        if len(body) != length:
            raise ConnectionAbortedError("the client closed before sending its body")
        return body

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """``http.server``'s own refusals (a malformed request line, an overlong header) as JSON like the others."""
        status = HTTPStatus(code)
        self._error(status, clipped(message or status.phrase))

    def _error(self, status: HTTPStatus, reason: str, headers: dict[str, str] | None = None) -> None:
        """Answer ``{"error": reason}`` and close (an unread body must not be taken for the next request)."""
        self.close_connection = True
        self._send(status, "application/json", json.dumps({"error": reason}).encode(), headers)

    def _send(self, status: HTTPStatus, kind: str, body: bytes, headers: dict[str, str] | None = None) -> None:
        self._replied = True
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _stream(self) -> None:
        """Server-sent events: every new snapshot, as it is published (at most ``max_streams`` at once)."""
        if not self.server.streams.acquire(blocking=False):
            raise _Refusal(HTTPStatus.SERVICE_UNAVAILABLE, f"too many pages open: this server holds at most "
                           f"{self.server.max_streams} event streams; close a page and reload")
        try:
            self._replied = True
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            hub = self.server.hub
            version, snapshot = hub.latest()
            if version:
                self.wfile.write(f"data: {snapshot}\n\n".encode())
                self.wfile.flush()
            while not hub.closed:  # a keep-alive every KEEPALIVE seconds, well within request_timeout
                news = hub.wait(version, KEEPALIVE)
                if news is None:
                    self.wfile.write(b": keep-alive\n\n")
                else:
                    version, snapshot = news
                    self.wfile.write(f"data: {snapshot}\n\n".encode())
                self.wfile.flush()
        finally:
            self.server.streams.release()
