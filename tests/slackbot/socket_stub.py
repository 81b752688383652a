"""A local Socket Mode server: a real websocket on 127.0.0.1 speaking Slack's envelope protocol.

The Web API stub answers ``apps.connections.open`` with this server's URL; the
client connects, gets a ``hello``, then whatever envelopes the test sends
(``{envelope_id, type, payload, accepts_response_payload}``). Everything the
client sends back (acks ``{envelope_id, payload?}``) is recorded.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from typing import Any

from aiohttp import WSMsgType, web

HELLO = {"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A1"},
         "debug_info": {"host": "local-stub", "approximate_connection_time": 3600}}


class SocketModeStub:
    """Start with ``SocketModeStub().start()``; give ``url`` to the Web API stub."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.connected = threading.Event()
        self._lock = threading.Lock()
        self._ws: web.WebSocketResponse | None = None
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="socket-mode-stub", daemon=True)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self._sock.getsockname()[1]}/link/?ticket=t-1&app_id=A1"

    def start(self) -> SocketModeStub:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(5)
        return self

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_get("/link/", self._session)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.SockSite(self._runner, self._sock).start()

    async def _session(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._ws = ws
        await ws.send_json(HELLO)
        self.connected.set()
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                with self._lock:
                    self.received.append(json.loads(msg.data))
        return ws

    def send(self, envelope: dict[str, Any]) -> None:
        """Deliver one envelope to the connected client."""
        assert self._ws is not None, "no client connected"
        asyncio.run_coroutine_threadsafe(self._ws.send_json(envelope), self._loop).result(5)

    def acks(self, envelope_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [m for m in self.received if m.get("envelope_id") == envelope_id]

    def stop(self) -> None:
        async def close() -> None:
            if self._ws is not None:
                await self._ws.close()
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()
