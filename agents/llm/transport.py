"""The model transport: the one port through which a model request is answered (httpx's ``BaseTransport`` habit).

A ``ModelTransport`` takes a ``ModelRequest`` (the request's JSON, its canonical bytes, its cassette key and
who asked) and returns a ``ModelResponse`` (the API's JSON answer and its request id), or raises:

- ``Retryable`` (``agents.llm.ratelimit``; ``Unreachable`` when the API was never reached): worth trying again;
- ``GaveUp``: a call that used its retries (recorded; a pass for the trader);
- ``AgentFailure`` (``market.backends``): the API refused this conversation, or its answer cannot be read;
- ``FatalPolicyError`` (``market.backends``): the account is refused; no later call can succeed;
- ``ReplayMiss``: replaying, and the cassette does not hold the request.

Implementations, composed by the policy rather than chosen by branches:

- ``SdkTransport``: one attempt through an official SDK client (anthropic or openai), errors classified by the wire;
- ``Retrying``: retries, per-model rate limits, the calls-in-flight bound and the run's stop on a refused
  account or an unreachable API, around another transport;
- ``Recording``: appends each outcome of another transport to the cassette;
- ``Replay``: answers from the cassette (no network); what it does not hold goes to another transport, or is a
  ``ReplayMiss`` when there is none;
- ``MockTransport``: answers with a function (tests); ``agents.llm.estimate.Simulated`` answers in process.

A live tier is ``Replay(cassette, Recording(cassette, Retrying(SdkTransport(...))))``; a replayed tier is
``Replay(cassette)``. Keys and URLs come in as an ``Endpoint`` (read at the edge, ``agents.llm.endpoints``).
"""

from __future__ import annotations

import asyncio
import collections
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx2
import openai

from agents.llm.cassette import Cassette
from agents.llm.ratelimit import ModelLimits, Retryable, Unreachable, with_retries
from agents.llm.wire import Api, read_body
from market.backends import AgentFailure, BackendError, FatalPolicyError
from market.scenario import TierSettings

RAW_HEADERS = {"X-Stainless-Raw-Response": "raw", "Content-Type": "application/json"}
CONNECT_TIMEOUT = 10.0  # seconds to connect (TCP and TLS) before an attempt counts as a connection failure
UNREACHABLE_STOP = 3  # connection failures in a row, no answer in between, that stop the run (with a call given up)


@dataclass(frozen=True)
class ModelRequest:
    """One request to a model: its JSON (``json``), the same as canonical bytes (``body``, what is sent), its
    cassette ``key``, the size the key was made from (for the tokens-per-minute estimate), and ``where`` it was
    asked (market, trader, tier, step, purpose: recorded with it). ``faults`` counts the faults of its attempts
    and ``answered`` is called when an attempt's answer has come and its slot is free, before the answer is
    worked on (like httpx's ``trace`` extension: the asker's counter and cue, used by ``Retrying``)."""

    api: str
    tier: str
    model: str
    json: dict[str, Any]
    body: bytes
    key: str
    size: int
    where: dict[str, Any]
    faults: Counter[str] = field(default_factory=Counter)
    answered: Callable[[], None] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ModelResponse:
    """A model's answer: the API's JSON object, its request id, and whether a cassette answered (nothing spent)."""

    body: dict[str, Any]
    request_id: str | None
    replayed: bool = False


class GaveUp(Exception):
    """A call that used its retries without an answer (``reason``: the last fault); ``replayed``: as recorded."""

    def __init__(self, reason: str, replayed: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.replayed = replayed


class RecordedFailure(AgentFailure):
    """An ``AgentFailure`` answered from the cassette: the turn fails as it failed when recorded."""


class ReplayMiss(BackendError):
    """A request the cassette does not hold, in replay mode."""


class ModelTransport:
    """Sends one ``ModelRequest`` and returns its ``ModelResponse`` (see the module docstring for what it raises)."""

    async def send(self, request: ModelRequest) -> ModelResponse:
        """The answer to ``request``."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release what the transport holds (connections, a server); idempotent. Nothing by default."""


@dataclass(frozen=True)
class Endpoint:
    """Where an API is and the key it takes, read at the edge and passed in."""

    key: str | None
    base_url: str


def client_timeout(settings: TierSettings) -> httpx2.Timeout:
    """An SDK client's timeouts: the tier's ``timeout`` per call, at most ``CONNECT_TIMEOUT`` to connect."""
    return httpx2.Timeout(settings.timeout, connect=min(settings.timeout, CONNECT_TIMEOUT))


def anthropic_client(endpoint: Endpoint, settings: TierSettings) -> anthropic.AsyncAnthropic:
    """The Anthropic SDK client of a tier (no SDK retries: ``Retrying`` retries and counts)."""
    return anthropic.AsyncAnthropic(
        api_key=endpoint.key, base_url=endpoint.base_url, timeout=client_timeout(settings), max_retries=0,
        http_client=anthropic.DefaultAioHttpClient(),
    )


def openai_client(endpoint: Endpoint, settings: TierSettings) -> openai.AsyncOpenAI:
    """The OpenAI SDK client of a tier, for any OpenAI-compatible server (no SDK retries)."""
    return openai.AsyncOpenAI(
        api_key=endpoint.key, base_url=endpoint.base_url, timeout=client_timeout(settings), max_retries=0,
        http_client=openai.DefaultAioHttpClient(),
    )


SdkClient = anthropic.AsyncAnthropic | openai.AsyncOpenAI


class SdkTransport(ModelTransport):
    """One attempt through an official SDK client, made on first use (on the policy's event loop) by ``make``.

    The client brings its key, base URL, timeout and error classes, but a request is not copied and encoded
    again by ``messages.create``: the canonical bytes are POSTed to the wire's ``path`` as they are (at 32
    calls in flight that work, serial on one event loop, was a third of the time). The header asks the SDK
    (both are generated by Stainless) for the raw response, as its ``with_raw_response`` does. The SDK's
    ``api.errors`` are classified by the wire (``Api.classify``).
    """

    def __init__(self, api: Api, make: Callable[[], SdkClient]) -> None:
        self.api = api
        self._make = make
        self._client: SdkClient | None = None

    @property
    def client(self) -> SdkClient:
        """The SDK client (made now if it was not yet)."""
        if self._client is None:
            self._client = self._make()
        return self._client

    async def send(self, request: ModelRequest) -> ModelResponse:
        """POST ``request.body``; the answer read with bounds (``read_body``)."""
        client = self.client
        try:
            raw = await client.post(self.api.path, cast_to=dict, content=request.body, options={"headers": RAW_HEADERS})
            return ModelResponse(read_body(await raw.read()), raw.request_id)
        except self.api.errors as exc:
            raise self.api.classify(exc, str(client.base_url)) from None

    async def aclose(self) -> None:
        """Close the client, if it was made."""
        client, self._client = self._client, None
        if client is not None:
            await client.close()


@dataclass
class Gate:
    """What every live call of one policy shares: the bound on calls in flight, the account's refusal once it
    came (nothing is sent after it), per tier the connection failures since its last answer, and the pacing of
    the work between answers (``pace``)."""

    concurrency: int
    fatal: FatalPolicyError | None = None
    unreachable: Counter[str] = field(default_factory=Counter)
    _semaphore: asyncio.Semaphore | None = None
    _pacing: bool = False
    _sending: collections.deque[asyncio.Future[None]] = field(default_factory=collections.deque)
    _paced: collections.deque[asyncio.Future[None]] = field(default_factory=collections.deque)

    def semaphore(self) -> asyncio.Semaphore:
        """The calls-in-flight bound (made on first use, on the event loop)."""
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.concurrency)
        return self._semaphore

    async def pace(self, sending: bool = False) -> None:
        """Wait for a turn of the event loop that no other call's work has taken (one a turn, first come first
        served, those ``sending`` a new request before those working on an answer); called before a stretch of
        work that may end in sending a request. On Python 3.11 aiohttp writes a request in a task of its own,
        which runs on the loop's next turn, after all the rest of this one: unpaced, answers that came together
        were each read, and each trader's next request built, before the first of those requests was written,
        and so they came back together again, round after round."""
        if not self._pacing:
            self._pacing = True
            asyncio.get_running_loop().call_soon(self._next_pace)
            return
        waiter = asyncio.get_running_loop().create_future()
        (self._sending if sending else self._paced).append(waiter)
        await waiter

    def _next_pace(self) -> None:
        for queue in (self._sending, self._paced):
            while queue:
                waiter = queue.popleft()
                if not waiter.done():  # (a cancelled waiter gives its turn on)
                    waiter.set_result(None)
                    waiter.get_loop().call_soon(self._next_pace)
                    return
        self._pacing = False


class Retrying(ModelTransport):
    """``inner`` within the model's rate limits and the gate, retried on ``Retryable`` faults (each counted in
    ``request.faults``) up to the tier's ``max_retries``; then ``GaveUp``, or ``FatalPolicyError`` naming the
    URL once the tier has had ``UNREACHABLE_STOP`` connection failures in a row with no answer in between."""

    def __init__(self, inner: ModelTransport, settings: TierSettings, limits: ModelLimits, gate: Gate,
                 initial_wait: float) -> None:
        self.inner, self.settings, self.limits, self.gate = inner, settings, limits, gate
        self.initial_wait = initial_wait

    async def send(self, request: ModelRequest) -> ModelResponse:
        """The answer of the first attempt that gets one."""
        gate = self.gate
        if gate.fatal is not None:
            raise gate.fatal
        estimate = request.size // 4 + self.settings.max_tokens  # tokens, for the per-minute budget

        async def attempt() -> ModelResponse:
            try:
                async with self.limits.slot(estimate), gate.semaphore():
                    if gate.fatal is not None:
                        raise gate.fatal
                    answer = await self.inner.send(request)
                if request.answered is not None:  # the slot is free: what the asker starts now goes out first
                    request.answered()
                    await asyncio.sleep(0)
            finally:
                await gate.pace()  # its answer (or fault) is handled on a turn of its own
            gate.unreachable[request.tier] = 0
            return answer

        def fault(exc: Retryable) -> None:
            request.faults[exc.kind] += 1
            if isinstance(exc, Unreachable):
                gate.unreachable[request.tier] += 1

        try:
            return await with_retries(
                attempt, max_retries=self.settings.max_retries, initial_wait=self.initial_wait, on_fault=fault
            )
        except Unreachable as exc:
            failed = gate.unreachable[request.tier]
            if failed < UNREACHABLE_STOP:
                raise GaveUp(str(exc)) from None
            if gate.fatal is None:  # nothing is recorded: a resumed run asks again
                gate.fatal = FatalPolicyError(
                    f"cannot reach the {request.api} API at {exc.url} ({exc.detail}): {failed} connection "
                    f"failures in a row with no answer; check the network and tiers.{request.tier}.base_url")
            raise gate.fatal from None
        except Retryable as exc:
            raise GaveUp(str(exc)) from None
        except FatalPolicyError as exc:  # nothing is recorded: a resumed run asks again
            if gate.fatal is None:
                gate.fatal = exc
            raise

    async def aclose(self) -> None:
        """Close ``inner``."""
        await self.inner.aclose()


class Recording(ModelTransport):
    """``inner``, with each outcome appended to ``cassette``: the response, the fault it gave up on, or the
    failure of the conversation (so a replay fails the same turn the same way). A refused account is not
    recorded (a resumed run asks again)."""

    def __init__(self, cassette: Cassette, inner: ModelTransport) -> None:
        self.cassette, self.inner = cassette, inner

    async def send(self, request: ModelRequest) -> ModelResponse:
        """``inner``'s answer, recorded."""
        base = {"kind": "call", "key": request.key, **request.where, "api": request.api, "request": request.json}
        try:
            answer = await self.inner.send(request)
        except GaveUp as exc:
            self.cassette.append({**base, "error": exc.reason}, request.body)
            raise
        except AgentFailure as exc:
            self.cassette.append({**base, "failure": {"kind": exc.kind, "reason": exc.reason}}, request.body)
            raise
        self.cassette.append({**base, "response": answer.body, "request_id": answer.request_id}, request.body)
        return answer

    async def aclose(self) -> None:
        """Close ``inner``."""
        await self.inner.aclose()


class Replay(ModelTransport):
    """Answers a recorded request from ``cassette`` (copied into the cassette's own file if it came from another),
    as it was recorded: the response, ``GaveUp`` or ``RecordedFailure``. A request it does not hold goes to
    ``otherwise``; with none, it is a ``ReplayMiss`` naming who asked and when."""

    def __init__(self, cassette: Cassette, otherwise: ModelTransport | None = None) -> None:
        self.cassette, self.otherwise = cassette, otherwise

    async def send(self, request: ModelRequest) -> ModelResponse:
        """The recorded answer, else ``otherwise``'s."""
        entry = self.cassette.get(request.key)
        if entry is None:
            if self.otherwise is None:
                w = request.where
                raise ReplayMiss(
                    f"replay: the cassette has no answer for trader {w['trader']} in market {w['market']} at step "
                    f"{w['step']} ({w['purpose']}, request {request.key[:12]}); the run asked something that was "
                    f"not recorded (changed scenario, seed, prompts or settings?)"
                )
            return await self.otherwise.send(request)
        self.cassette.keep(entry)
        failure = entry.get("failure")
        if failure:
            raise RecordedFailure(failure["kind"], failure["reason"])
        if entry.get("error"):
            raise GaveUp(entry["error"], replayed=True)
        return ModelResponse(entry["response"], entry.get("request_id"), replayed=True)

    async def aclose(self) -> None:
        """Close ``otherwise``."""
        if self.otherwise is not None:
            await self.otherwise.aclose()


class MockTransport(ModelTransport):
    """Answers with ``handler`` (tests): it takes the request and returns the response or raises as a transport
    may (httpx's ``MockTransport`` habit)."""

    def __init__(self, handler: Callable[[ModelRequest], Awaitable[ModelResponse]]) -> None:
        self.handler = handler

    async def send(self, request: ModelRequest) -> ModelResponse:
        """``handler``'s answer."""
        return await self.handler(request)


__all__ = [
    "CONNECT_TIMEOUT", "UNREACHABLE_STOP", "Endpoint", "Gate", "GaveUp", "MockTransport", "ModelRequest",
    "ModelResponse", "ModelTransport", "RecordedFailure", "Recording", "Replay", "ReplayMiss", "Retrying",
    "SdkTransport", "anthropic_client", "client_timeout", "openai_client",
]
