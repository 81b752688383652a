"""The ``local`` backend: a tier on an open-weight model served here by ``llama_cpp.server``.

``--backend small=local:smollm2-135m`` (or ``backend: local`` and ``model: smollm2-135m``
in a scenario) starts a server for the model on 127.0.0.1 when the run is set up
(the GGUF file comes from its installed package; see ``agents.llm.local_server``) and
talks to it through the same ``ModelPolicy`` (cassette, repairs, faults, prices: $0) with the
constrained wire of ``agents.llm.constrained``: every answer is held by llama.cpp's grammar to
one action of the action tools' schema (the ``gbnf`` form: the schema as a grammar in the request's
``grammar`` field, amounts held to whole cents from 1),
so a small model always writes a well-formed action, and the prompt is compact (short rules, one
line per action, the trader's own rules and mandate, a compact JSON observation). Besides:

- a fixed ``seed`` goes with each request;
- the server answers one request at a time, so calls to it are queued here and the
  timeout runs from when a call is sent, not from when it was queued;
- a prompt longer than the server's context (``n_ctx``) comes back as a 400
  ``context_length_exceeded``: that trader's turn fails (``context_too_long``), the week goes on;
- defaults suited to a small model on a CPU, unless the tier sets them: 2 turns of
  history, 1 retry, a 300 s timeout, 200 output tokens.

``LocalApi`` is the wire (pure); ``LocalServers`` starts and keeps the run's servers, and each local tier is
reached through a ``LocalTransport`` (one call at a time to its server, timed).

Tier options: ``n_ctx`` (tokens; default per model), ``threads`` (CPU threads of the server),
``seed`` (default 0). Replaying a recorded run needs no server (``--backend TIER=replay``).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import openai
import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agents.llm.agent import ModelPolicy, shared_policy
from agents.llm.constrained import ConstrainedApi
from agents.llm.local_server import INSTALL_HINT, LocalModelError, LocalServer, model, model_file, server_installed
from agents.llm.transport import ModelRequest, ModelResponse, ModelTransport, SdkTransport
from market.backends import BackendContext, BackendError
from market.scenario import TierSettings

# defaults for a small model on a CPU, applied when the tier does not set the field itself
LOCAL_DEFAULTS: dict[str, Any] = {"history_turns": 2, "max_retries": 1, "timeout": 300.0, "max_tokens": 200}


class LocalOptions(BaseModel):
    """The ``options`` of a ``local`` tier."""

    model_config = ConfigDict(extra="forbid")

    n_ctx: Annotated[int, Field(ge=256, le=131_072)] | None = Field(
        None, description="the server's context window in tokens (default: the model's own setting here)"
    )
    threads: Annotated[int, Field(ge=1, le=256)] | None = Field(None, description="CPU threads of the server")
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = Field(
        0, description="base of each request's sampling seed (request_seed)"
    )
    price: dict[str, Any] | None = Field(None, description="dollars per million tokens (default: $0)")
    context_tokens: Annotated[int, Field(gt=0)] | None = Field(
        None, description="the model policy's own prompt budget (see README); the server's window is n_ctx"
    )


def local_options(tier: str, settings: TierSettings) -> LocalOptions:
    """The tier's options, checked (an unknown key or a bad value names the field)."""
    try:
        return LocalOptions.model_validate(settings.options)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise BackendError(f"tiers.{tier}.options.{where}: {first['msg']}") from None


@dataclass
class ServerTime:
    """What one local server answered: calls, the seconds they took (queueing excluded), and tokens."""

    calls: int = 0
    seconds: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, seconds: float, response: dict[str, Any]) -> None:
        """Count one answered call."""
        usage = response.get("usage") if isinstance(response.get("usage"), dict) else {}
        self.calls += 1
        self.seconds += seconds
        self.prompt_tokens += int(usage.get("prompt_tokens") or 0)
        self.completion_tokens += int(usage.get("completion_tokens") or 0)


@dataclass
class LocalClient:
    """One local server and an OpenAI SDK client for it; calls go out one at a time."""

    model: str
    server: LocalServer
    sdk: openai.AsyncOpenAI
    time: ServerTime = field(default_factory=ServerTime)
    _lock: asyncio.Lock | None = field(default=None, repr=False)
    _closed: bool = False

    @property
    def lock(self) -> asyncio.Lock:
        """Made on first use, on the policy's event loop."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def close(self) -> None:
        """Close the SDK client and stop the server (idempotent: tiers on one model share it)."""
        if self._closed:
            return
        self._closed = True
        await self.sdk.close()
        await asyncio.to_thread(self.server.close)


class LocalApi(ConstrainedApi):
    """Constrained chat completions to a ``llama_cpp.server`` (the ``gbnf`` form and a fixed seed).

    ``servers``: the servers its tiers run on (``LocalServers``), so tiers on one model share one; ``clients`` lists
    them by (model, context, threads) for whoever reports on them (benchmarks, tests). The wire itself is pure.
    """

    name = "local"
    form = "gbnf"  # llama.cpp's own grammar: amounts held to whole cents >= 1 (see constrained.action_grammar)

    def __init__(self, servers: LocalServers | None = None) -> None:
        self.servers = servers if servers is not None else LocalServers()

    @property
    def clients(self) -> dict[tuple[str, int, int | None], LocalClient]:
        """The servers started for this wire's tiers, by (model, n_ctx, threads)."""
        return self.servers.clients

    def request(self, settings: TierSettings, model_name: str, system: str, messages: list[dict[str, Any]]) -> dict:
        """The constrained request, with a sampling seed drawn from the tier's ``seed`` and the request itself."""
        body = super().request(settings, model_name, system, messages)
        body["seed"] = request_seed(int(settings.options.get("seed", 0)), body)
        return body


def request_seed(seed: int, body: dict[str, Any]) -> int:
    """The sampling seed of one request: the first 31 bits of sha256(tier seed | the request's messages).

    One seed for every request (what was sent before) made the sampler draw the same numbers on every turn, so a
    trader whose prompt hardly changed between turns answered the same action all week (measured on
    local_tiers.yaml). Derived from the request, draws differ from turn to turn and the same request still draws
    alike (a run is repeatable live)."""
    digest = hashlib.sha256(orjson.dumps([seed, body["messages"]])).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFF_FFFF


class LocalServers:
    """The local servers of a run, one per (model, n_ctx, threads), logging into ``log_dir``."""

    def __init__(self, log_dir: Path | None = None) -> None:
        self.log_dir = log_dir
        self.clients: dict[tuple[str, int, int | None], LocalClient] = {}

    def client(self, settings: TierSettings) -> LocalClient:
        """The client of the tier's model's server, started now if it is not running yet."""
        assert settings.model is not None
        found = model(settings.model)
        options = LocalOptions.model_validate(settings.options)
        n_ctx = options.n_ctx or found.n_ctx
        key = (found.name, n_ctx, options.threads)
        if key not in self.clients:
            log = self.log_dir / f"local-server-{found.name}.log" if self.log_dir is not None else None
            server = LocalServer(model_file(found.name), n_ctx, options.threads, log=log).start()
            sdk = openai.AsyncOpenAI(
                api_key="local", base_url=server.base_url, timeout=settings.timeout, max_retries=0,
                http_client=openai.DefaultAioHttpClient(),
            )
            self.clients[key] = LocalClient(found.name, server, sdk)
        return self.clients[key]


class LocalTransport(ModelTransport):
    """A tier's calls to its local server: one at a time (the timeout runs from when a call is sent), timed.
    Errors are classified as for any OpenAI-compatible server (a prompt past ``n_ctx`` is a 400
    ``context_length_exceeded``: ``context_too_long``)."""

    def __init__(self, api: LocalApi, client: LocalClient) -> None:
        self.client = client
        self.sdk = SdkTransport(api, lambda: client.sdk)

    async def send(self, request: ModelRequest) -> ModelResponse:
        """POST ``request`` when the server is free."""
        async with self.client.lock:
            began = time.perf_counter()
            answer = await self.sdk.send(request)
            self.client.time.add(time.perf_counter() - began, answer.body)
            return answer

    async def aclose(self) -> None:
        """Close the SDK client and stop the server (idempotent: tiers on one model share it)."""
        await self.client.close()


def with_local_defaults(settings: TierSettings) -> TierSettings:
    """``settings`` with ``LOCAL_DEFAULTS`` for the fields the tier did not set."""
    unset = {k: v for k, v in LOCAL_DEFAULTS.items() if k not in settings.model_fields_set}
    return settings.model_copy(update=unset)


def build_policy(tier: str, settings: TierSettings, context: BackendContext) -> ModelPolicy:
    """The ``local`` backend for ``tier``: its model's server is started now and stopped with the policy."""
    if not settings.model:
        raise BackendError(f"tiers.{tier}.model: name a local model, e.g. smollm2-135m")
    try:
        model(settings.model)
    except LocalModelError as exc:
        raise BackendError(f"tiers.{tier}.model: {exc}") from None
    local_options(tier, settings)
    if not server_installed():
        raise BackendError(f"tiers.{tier}: the local backend needs llama-cpp-python's server: {INSTALL_HINT}")
    settings = with_local_defaults(settings)
    policy = shared_policy(context)
    # every local tier of the run shares one LocalApi, so tiers on the same model share its server
    api = next((t.api for t in policy.tiers.values() if isinstance(t.api, LocalApi)), None)
    if api is None:
        api = LocalApi(LocalServers(Path(context.run_dir) if context.run_dir is not None else None))
    price = policy.check_tier(tier, settings, settings.model)  # before the server starts
    try:
        transport = LocalTransport(api, api.servers.client(settings))
    except LocalModelError as exc:
        raise BackendError(f"tiers.{tier}: {exc}") from None
    policy.add_tier(tier, settings, api, settings.model, transport, price)
    return policy


__all__ = ["LOCAL_DEFAULTS", "LocalApi", "LocalClient", "LocalOptions", "LocalServers", "LocalTransport", "ServerTime",
           "build_policy", "local_options", "request_seed", "with_local_defaults"]
