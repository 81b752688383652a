"""The local web server: the page, a server-sent-events stream of snapshots, and the controls.

Standard library only (``http.server``): one thread per connection, so a page
holding its event stream open never blocks another. The page is one document
(``page.page_html``: its HTML, CSS and JavaScript files with plotly.js inlined),
so it needs no network.
"""

from __future__ import annotations

import errno
import json
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from watch.controls import ControlError, Controls
from watch.hub import Hub
from watch.page import page_html

KEEPALIVE = 10.0


class WatchError(ValueError):
    """Bad input for watching (a folder that is not a run, a port in use)."""


class WatchServer(ThreadingHTTPServer):
    """Serves one watched run; ``url`` says where."""

    daemon_threads = True

    def __init__(self, hub: Hub, controls: Controls, host: str = "127.0.0.1", port: int = 0) -> None:
        self.hub, self.controls, self.page = hub, controls, page_html()
        try:
            super().__init__((host, port), _Handler)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise WatchError(f"port {port} on {host} is in use; choose another with --port "
                                 "(or leave it out for a free one)") from None
            if isinstance(exc, socket.gaierror) or exc.errno in (errno.EADDRNOTAVAIL, errno.EACCES):
                raise WatchError(f"cannot serve on {host[:253]}:{port} ({exc.strerror or exc})") from None
            raise
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> WatchServer:
        self._thread = threading.Thread(target=self.serve_forever, name="watch-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.hub.close()
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: WatchServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: the terminal shows the run, not every request

    def do_GET(self) -> None:
        route = self.path.split("?", 1)[0]
        if route == "/":
            self._send(HTTPStatus.OK, "text/html; charset=utf-8", self.server.page)
        elif route == "/state":
            self._send(HTTPStatus.OK, "application/json", self.server.hub.latest()[1].encode())
        elif route == "/events":
            self._stream()
        else:
            self._send(HTTPStatus.NOT_FOUND, "text/plain", b"not found")

    def do_POST(self) -> None:
        if self.path != "/control":
            self._send(HTTPStatus.NOT_FOUND, "text/plain", b"not found")
            return
        try:
            length = int(self.headers.get("Content-Length", 0))
            request = json.loads(self.rfile.read(length) or b"{}")
            if not isinstance(request, dict):
                raise ControlError("send a JSON object like {\"action\": \"pause\"}")
            self.server.controls.apply(request)
        except (ValueError, ControlError) as exc:
            self._send(HTTPStatus.BAD_REQUEST, "application/json", json.dumps({"error": str(exc)}).encode())
            return
        self._send(HTTPStatus.OK, "application/json", b'{"ok":true}')

    def _send(self, status: HTTPStatus, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _stream(self) -> None:
        """Server-sent events: every new snapshot, as it is published."""
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        hub = self.server.hub
        version, snapshot = hub.latest()
        try:
            if version:
                self.wfile.write(f"data: {snapshot}\n\n".encode())
                self.wfile.flush()
            while not hub.closed:
                news = hub.wait(version, KEEPALIVE)
                if news is None:
                    self.wfile.write(b": keep-alive\n\n")
                else:
                    version, snapshot = news
                    self.wfile.write(f"data: {snapshot}\n\n".encode())
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return
