"""Where model requests are sent from: the policy's own event loop, or a few worker processes.

A request reaches a transport already encoded (its canonical JSON, which is also its cassette
key); the transport POSTs it through the tier's official SDK client and returns (the response, its
request id), or raises ``Retryable`` / ``BackendError`` as the tier's ``Api.send`` does. Retries,
rate limits, the cassette and the order in which actions apply all stay in the policy, so the
transport changes how fast a run goes, never what it records.

``Local`` sends from the policy's event loop. ``Workers`` spreads requests over processes, each with
its own event loop and SDK clients: the SDK's and HTTP's work for many calls in flight then runs on
several cores instead of in turns on one loop (with 32 calls in flight and 200 ms answers, that
work on one loop left the model-call loop busy most of the time). Worker processes are spawned when
the transport is made, so they import the SDKs while the run is being set up.
"""

from __future__ import annotations

import asyncio
import itertools
import pickle
import socket
import struct
import subprocess
import sys
from typing import TYPE_CHECKING, Any, Protocol

from market.backends import BackendError

if TYPE_CHECKING:
    from agents.llm.agent import Api, Tier

HEADER = struct.Struct(">I")  # the length of each framed message


class Transport(Protocol):
    def prepare(self, tier: Tier) -> None:
        """Get ready to send for ``tier`` (at set-up, so the first calls do not wait for it)."""
        ...

    async def send(self, tier: Tier, body: bytes) -> tuple[dict[str, Any], str | None]: ...

    async def aclose(self) -> None:
        """Close the clients (and stop any worker processes)."""
        ...


class Local:
    """Requests sent from the calling event loop, one SDK client per tier."""

    def __init__(self) -> None:
        self._clients: dict[str, Any] = {}

    def prepare(self, tier: Tier) -> None:
        if tier.name not in self._clients:
            self._clients[tier.name] = tier.api.client(tier.settings)

    async def send(self, tier: Tier, body: bytes) -> tuple[dict[str, Any], str | None]:
        self.prepare(tier)
        return await tier.api.send(self._clients[tier.name], body)

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.close()


async def _read(reader: asyncio.StreamReader) -> Any:
    size = HEADER.unpack(await reader.readexactly(HEADER.size))[0]
    return pickle.loads(await reader.readexactly(size))


def _frame(message: Any) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(data)) + data


class _Worker:
    """One worker process and the policy's end of its socket."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.socket, child = socket.socketpair()
        # a plain interpreter running this module (not multiprocessing's spawn, which would import the
        # caller's __main__ again), given its end of the socket
        self.process = subprocess.Popen(
            [sys.executable, "-m", __name__, str(child.fileno())], pass_fds=[child.fileno()],
        )
        child.close()
        self.writer: asyncio.StreamWriter | None = None
        self.tiers: set[str] = set()
        self.waiting: dict[int, asyncio.Future[Any]] = {}
        self.reading: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        reader, self.writer = await asyncio.open_unix_connection(sock=self.socket)
        self.reading = asyncio.get_running_loop().create_task(self._answers(reader))

    async def _answers(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                call, ok, value = await _read(reader)
                future = self.waiting.pop(call, None)
                if future is None or future.done():
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            error = BackendError(f"model-call worker {self.number} stopped (exit code {self.process.poll()})")
            for future in self.waiting.values():
                if not future.done():
                    future.set_exception(error)
            self.waiting.clear()


class Workers:
    """Requests spread over ``count`` worker processes (the least busy one takes the next request)."""

    def __init__(self, count: int) -> None:
        if count < 1:
            raise ValueError(f"workers must be at least 1, got {count}")
        self._workers = [_Worker(n) for n in range(count)]
        self._ids = itertools.count()
        self._connected: asyncio.Future[Any] | None = None

    def prepare(self, tier: Tier) -> None:
        pass  # each worker makes its client when it is first sent a request for ``tier``

    async def send(self, tier: Tier, body: bytes) -> tuple[dict[str, Any], str | None]:
        if self._connected is None:  # once, on the calling loop (where the streams will live)
            self._connected = asyncio.ensure_future(asyncio.gather(*(w.connect() for w in self._workers)))
        await self._connected
        worker = min(self._workers, key=lambda w: len(w.waiting))
        assert worker.writer is not None
        if tier.name not in worker.tiers:
            worker.tiers.add(tier.name)
            worker.writer.write(_frame(("tier", tier.name, tier.api, tier.settings)))
        call = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        worker.waiting[call] = future
        worker.writer.write(_frame(("call", call, tier.name, body)))
        return await future

    async def aclose(self) -> None:
        for worker in self._workers:
            if worker.reading is not None:
                worker.reading.cancel()
            worker.socket.close()  # the worker reads the end of its input and exits
        for worker in self._workers:
            try:
                worker.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()


def make(workers: int) -> Transport:
    """``Workers(workers)`` for one or more workers, else ``Local()``."""
    return Workers(workers) if workers > 0 else Local()


# --- the worker process ----------------------------------------------------------------------


async def _work(sock: socket.socket) -> None:
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    tiers: dict[str, tuple[Api, Any]] = {}
    running: set[asyncio.Task[None]] = set()

    async def answer(call: int, tier: str, body: bytes) -> None:
        api, client = tiers[tier]
        try:
            message = (call, True, await api.send(client, body))
        except Exception as exc:  # sent back as the policy's own error types
            message = (call, False, _portable(exc))
        writer.write(_frame(message))

    while True:
        try:
            message = await _read(reader)
        except (asyncio.IncompleteReadError, ConnectionError):
            break
        if message[0] == "tier":
            _, name, api, settings = message
            tiers[name] = (api, api.client(settings))
        else:
            task = asyncio.create_task(answer(*message[1:]))
            running.add(task)
            task.add_done_callback(running.discard)
    for _, client in tiers.values():
        await client.close()


def _portable(exc: Exception) -> Exception:
    """``exc`` if it survives pickling, else a ``BackendError`` that says what it was."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return BackendError(f"model call failed: {exc!r}")


if __name__ == "__main__":
    asyncio.run(_work(socket.socket(fileno=int(sys.argv[1]))))
