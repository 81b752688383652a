"""The model transport port: recording, replay, retries and the edge that reads keys and URLs."""

from __future__ import annotations

import ast
import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from agents.llm.cassette import Cassette, keyed_text
from agents.llm.endpoints import anthropic_endpoint, openai_endpoint
from agents.llm.ratelimit import ModelLimits, Retryable, Unreachable
from agents.llm.transport import (
    UNREACHABLE_STOP,
    Gate,
    GaveUp,
    MockTransport,
    ModelRequest,
    ModelResponse,
    RecordedFailure,
    Recording,
    Replay,
    ReplayMiss,
    Retrying,
)
from market.backends import AgentFailure, FatalPolicyError
from market.scenario import TierSettings

LLM = Path(__file__).resolve().parents[2] / "agents" / "llm"
WHERE = {"market": "A", "trader": "p1", "tier": "small", "step": 3, "purpose": "turn"}


def _request(text: str) -> ModelRequest:
    json = {"model": "m", "messages": [{"role": "user", "content": text}]}
    key, size, body = keyed_text("openai", json)
    return ModelRequest("openai", "small", "m", json, body, key, size, dict(WHERE), Counter())


def _answering(outcomes: list[Any]) -> tuple[MockTransport, list[ModelRequest]]:
    """A transport giving ``outcomes`` in turn (an exception is raised), and the requests it was sent."""
    sent: list[ModelRequest] = []

    async def handler(request: ModelRequest) -> ModelResponse:
        sent.append(request)
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return ModelResponse(outcome, "req_1")

    return MockTransport(handler), sent


def _send(transport: Any, request: ModelRequest) -> ModelResponse:
    return asyncio.run(transport.send(request))


def test_what_is_recorded_replays_the_same_way_with_no_transport(tmp_path: Path) -> None:
    path = tmp_path / "cassette.jsonl"
    ok, refused, gave_up = _request("ok"), _request("refused"), _request("gave up")
    live, _ = _answering([{"choices": []}, AgentFailure("bad_request", "400 no"), GaveUp("server_error: 500")])
    recording = Recording(Cassette(path), live)
    assert _send(recording, ok) == ModelResponse({"choices": []}, "req_1")
    with pytest.raises(AgentFailure):
        _send(recording, refused)
    with pytest.raises(GaveUp):
        _send(recording, gave_up)
    lines = path.read_bytes().splitlines()
    assert len(lines) == 3 and all(b'"kind":"call"' in line and b'"trader":"p1"' in line for line in lines)

    replay = Replay(Cassette(None, source=path))  # nothing to fall back on: no network
    assert _send(replay, ok) == ModelResponse({"choices": []}, "req_1", replayed=True)
    with pytest.raises(RecordedFailure) as failed:
        _send(replay, refused)
    assert (failed.value.kind, failed.value.reason) == ("bad_request", "400 no")
    with pytest.raises(GaveUp) as given_up:
        _send(replay, gave_up)
    assert given_up.value.replayed and given_up.value.reason == "server_error: 500"
    with pytest.raises(ReplayMiss, match=r"trader p1 in market A at step 3 \(turn, request "):
        _send(replay, _request("new"))


def test_the_cassette_answers_first_and_only_new_requests_are_sent(tmp_path: Path) -> None:
    cassette = Cassette(tmp_path / "cassette.jsonl")
    live, sent = _answering([{"n": 1}, {"n": 2}])
    transport = Replay(cassette, Recording(cassette, live))
    first = _send(transport, _request("a"))
    again = _send(transport, _request("a"))
    other = _send(transport, _request("b"))
    assert (first.replayed, again.replayed, other.replayed) == (False, True, False)
    assert again.body == first.body == {"n": 1} and other.body == {"n": 2} and len(sent) == 2


def _retrying(inner: MockTransport, gate: Gate, retries: int = 2) -> Retrying:
    settings = TierSettings(backend="openai", model="m", max_retries=retries)
    return Retrying(inner, settings, ModelLimits.make(None, None), gate, initial_wait=0.0)


def test_faults_are_retried_and_counted_then_given_up() -> None:
    gate = Gate(4)
    live, sent = _answering([Retryable("rate_limited", "slow down"), {"ok": True}])
    request = _request("a")
    assert _send(_retrying(live, gate), request).body == {"ok": True}
    assert request.faults == {"rate_limited": 1} and len(sent) == 2
    live, _ = _answering([Retryable("server_error", "500 a"), Retryable("server_error", "500 b")])
    with pytest.raises(GaveUp, match="server_error: 500 b"):
        _send(_retrying(live, gate, retries=1), _request("b"))
    assert gate.fatal is None


def test_answers_that_came_together_are_each_handled_and_sent_on_before_the_next_is_read() -> None:
    """Each stretch of work after ``Gate.pace`` has a loop turn of its own, so what it sends (aiohttp writes a
    request on the loop's next turn, as ``written`` below) goes out before the next answer is worked on."""
    done: list[str] = []

    async def answered(gate: Gate, name: str) -> None:
        await gate.pace()
        done.append(f"{name} handled")
        asyncio.get_running_loop().call_soon(done.append, f"{name}'s next request written")

    async def together() -> None:
        gate = Gate(4)
        await asyncio.gather(*(answered(gate, name) for name in "abc"))
        await asyncio.sleep(0)

    asyncio.run(together())
    assert done == ["a handled", "a's next request written", "b handled", "b's next request written",
                    "c handled", "c's next request written"]


def test_an_unreachable_api_stops_the_run_and_nothing_is_sent_after_a_refusal() -> None:
    gate = Gate(4)
    down = [Unreachable("http://127.0.0.1:9/v1", "ConnectError: refused") for _ in range(UNREACHABLE_STOP)]
    live, _ = _answering(down)
    with pytest.raises(FatalPolicyError, match=r"cannot reach the openai API at http://127\.0\.0\.1:9/v1 .*"
                                                r"tiers\.small\.base_url"):
        _send(_retrying(live, gate, retries=UNREACHABLE_STOP - 1), _request("a"))
    assert gate.fatal is not None
    live, sent = _answering([{"ok": True}])
    with pytest.raises(FatalPolicyError):
        _send(_retrying(live, gate), _request("b"))
    assert sent == []


def test_keys_and_urls_come_from_the_tier_then_the_environment_given() -> None:
    env = {"ANTHROPIC_API_KEY": "k1", "ANTHROPIC_BASE_URL": "http://a", "OPENAI_API_KEY": ""}
    assert anthropic_endpoint(None, env).key == "k1" and anthropic_endpoint(None, env).base_url == "http://a"
    assert anthropic_endpoint("http://tier", env).base_url == "http://tier"
    assert openai_endpoint(None, env).key is None and openai_endpoint(None, env).base_url == "https://api.openai.com/v1"


def _imports(tree: ast.Module) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_only_the_endpoints_module_reads_the_environment_and_wires_never_import_the_policy() -> None:
    readers = []
    for path in sorted(LLM.glob("*.py")):
        if path.name == "local_server.py":  # the server process's own launcher, not a model API
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)} | {
            n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        if {"environ", "getenv"} & names:
            readers.append(path.name)
    assert readers == ["endpoints.py"]
    for name in ("wire.py", "transport.py", "constrained.py"):
        assert "agents.llm.agent" not in _imports(ast.parse((LLM / name).read_text(encoding="utf-8"))), name
