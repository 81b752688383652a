"""HTTP mode's door, over real HTTP to uvicorn on 127.0.0.1: nothing unsigned is parsed (401, never a
500), a signed malformed body is a 400, odd timestamps and oversized signatures are refused, a replayed
signed request does nothing, long values are clipped in the log, and slow or idle clients are cut off."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier

from slackbot.app import build_app
from slackbot.host import Host
from slackbot.logs import Redact
from slackbot.serve import MAX_BODY, SlackAsgi, http_server
from slackbot.signing import WINDOW, Door, Replays
from tests.slackbot.conftest import SECRET, command_body, payload_body, signed_request
from tests.slackbot.live import wait_for
from tests.slackbot.slack_stub import SlackStub

FORM = "application/x-www-form-urlencoded"


@dataclass
class Served:
    base: str
    port: int
    host: Host


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def serve(stub: SlackStub, client: WebClient, scenario: Path, tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Starts the real app under uvicorn in this process (``http_server`` options as keywords)."""
    stops: list[Callable[[], None]] = []

    def start(**options: Any) -> Served:
        host = Host(scenario, client, out=tmp_path / f"run{len(stops)}", speed=1, pace=0)
        asgi = SlackAsgi(build_app(host, client, signing_secret=SECRET), host, door=Door(SECRET),
                         body_timeout=0.5)
        port = _free_port()
        server = http_server(asgi, "127.0.0.1", port, **{"header_timeout": 0.5, **options})
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()

        def stop() -> None:
            server.should_exit = True
            thread.join(timeout=30)
            asgi.close()
            host.close()

        stops.append(stop)
        wait_for(lambda: server.started, what="uvicorn up")
        return Served(f"http://127.0.0.1:{port}", port, host)

    yield start
    for stop in stops:
        stop()


@pytest.fixture
def served(serve: Callable[..., Served]) -> Served:
    return serve()


def _post(base: str, body: str | bytes, headers: dict[str, str]) -> tuple[int, str]:
    data = body.encode() if isinstance(body, str) else body
    request = urllib.request.Request(base + "/slack/events", data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _signed(body: str, content_type: str = FORM, *, timestamp: str | None = None) -> dict[str, str]:
    ts = timestamp or str(int(time.time()))
    return {"Content-Type": content_type, "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body) or ""}


JUNK = [("{bad", "application/json"), ("[1]", "application/json"), ('"x"', "application/json"),
        ("payload=%7Bbad", FORM), ("payload=%5B1%5D", FORM), ("[" * 100_000, "application/json")]


def test_junk_is_refused_before_it_is_parsed_and_a_signed_malformed_body_is_a_400(
        served: Served, caplog: pytest.LogCaptureFixture) -> None:
    for body, content_type in JUNK:
        status, answer = _post(served.base, body, {"Content-Type": content_type})
        assert (status, json.loads(answer)) == (401, {"error": "invalid timestamp"}), body[:20]
        status, answer = _post(served.base, body, {"Content-Type": content_type, "X-Slack-Request-Timestamp":
                                                   str(int(time.time())), "X-Slack-Signature": "v0=" + "0" * 64})
        assert (status, json.loads(answer)) == (401, {"error": "invalid signature"}), body[:20]
        status, answer = _post(served.base, body, _signed(body, content_type))
        assert status == 400 and "JSON" in json.loads(answer)["error"], body[:20]
    assert "Traceback" not in caplog.text and "Exception in ASGI" not in caplog.text
    # a good signed request still goes through
    good = command_body("help", "UX", "http://x")
    status, answer = _post(served.base, good, _signed(good))
    assert status == 200 and "Usage" in json.loads(answer)["text"]


@pytest.mark.parametrize("timestamp", ["abc", "1" * 5000, "-5", "1.5", "१२३"])
def test_a_timestamp_that_is_not_1_to_12_digits_is_refused(served: Served, timestamp: str) -> None:
    body = command_body("help", "UX", "http://x")
    headers = _signed(body)
    headers["X-Slack-Request-Timestamp"] = timestamp
    status, answer = _post(served.base, body, {k: v.encode().decode("latin-1") for k, v in headers.items()})
    assert (status, json.loads(answer)) == (401, {"error": "invalid timestamp"})


def test_stale_and_oversized_signatures_are_refused_and_never_logged_in_full(
        served: Served, caplog: pytest.LogCaptureFixture) -> None:
    body = command_body("help", "UX", "http://x")
    old = str(int(time.time()) - WINDOW - 60)
    assert _post(served.base, body, _signed(body, timestamp=old))[0] == 401
    forged = "v0=" + "a" * 100_000
    status, answer = _post(served.base, body, {**_signed(body), "X-Slack-Signature": forged})
    assert (status, json.loads(answer)) == (401, {"error": "invalid signature"})
    assert "a" * 1000 not in caplog.text


def test_every_logged_value_is_clipped(stub: SlackStub, client: WebClient, scenario: Path, tmp_path: Path,
                                      caplog: pytest.LogCaptureFixture) -> None:
    """Bolt's own bad-signature note (a request handed to Bolt directly) is clipped by the redaction filter."""
    caplog.set_level(logging.INFO)
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    handler = Keep()
    handler.addFilter(Redact())
    logging.getLogger().addHandler(handler)
    host = Host(scenario, client, out=tmp_path / "run", speed=1, pace=0)
    try:
        app = build_app(host, client, signing_secret=SECRET)
        forged = "v0=" + "a" * 100_000
        assert app.dispatch(signed_request(command_body("help", "UX", "http://x"), signature=forged)).status == 401
    finally:
        logging.getLogger().removeHandler(handler)
        host.close()
    note = [r for r in records if "Invalid request signature" in r]
    assert note and all(len(r) < 1000 for r in records)
    assert "a" * 100 not in note[0] and "chars]" in note[0]


def test_a_replayed_signed_request_does_nothing(served: Served, stub: SlackStub,
                                                caplog: pytest.LogCaptureFixture) -> None:
    body = command_body("status", "UREPLAY1", stub.respond_url + "first")
    headers = _signed(body)
    answers = [_post(served.base, body, headers) for _ in range(3)]
    assert [status for status, _ in answers] == [200, 200, 200]
    later = command_body("status", "UREPLAY1", stub.respond_url + "later")
    assert _post(served.base, later, _signed(later))[0] == 200
    wait_for(lambda: {r["path"] for r in stub.state.responses} >= {"/respond/first", "/respond/later"},
             what="both answers")
    assert [r["path"] for r in stub.state.responses].count("/respond/first") == 1
    assert caplog.text.count("a replayed request was dropped") == 1


def test_replays_are_remembered_only_within_the_window() -> None:
    replays = Replays(window=WINDOW)
    now = 1_000_000.0
    for n in range(1000):
        assert replays.first_time(int(now) + n % 10, f"v0={n}", now)
    assert not replays.first_time(int(now), "v0=0", now)
    assert len(replays) == 1000
    # once the window has passed them, old pairs are forgotten (memory stays bounded)
    assert replays.first_time(int(now) + WINDOW + 20, "v0=new", now + WINDOW + 20)
    assert len(replays) == 1


def test_a_door_checks_a_clock_it_is_given() -> None:
    ts = 1_700_000_000
    body = b"a=1"
    sig = SignatureVerifier(SECRET).generate_signature(timestamp=str(ts), body=body) or ""
    headers = {"x-slack-request-timestamp": [str(ts)], "x-slack-signature": [sig]}
    assert Door(SECRET, clock=lambda: ts + 10).check(headers, body) is None
    refusal = Door(SECRET, clock=lambda: ts + WINDOW + 1).check(headers, body)
    assert refusal is not None and refusal.status == 401


def _raw(port: int, data: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(data)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    out = b""
    while chunk := sock.recv(65536):
        out += chunk
    return out


def test_a_slow_body_gets_408_and_partial_headers_are_cut_off(served: Served) -> None:
    head = b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: " + FORM.encode()
    with _raw(served.port, head + b"\r\nContent-Length: 1000\r\n\r\n" + b"a" * 10) as slow_body:
        assert _read_all(slow_body).startswith(b"HTTP/1.1 408 ")
    with _raw(served.port, head + b"\r\n") as partial:
        assert _read_all(partial) == b""  # closed by the server, no request ever began
    with _raw(served.port, head + f"\r\nContent-Length: {MAX_BODY + 1}\r\n\r\n".encode()) as huge:
        assert _read_all(huge).startswith(b"HTTP/1.1 413 ")  # refused before the body is read
    # an idle keep-alive connection is closed after its answer too
    with _raw(served.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") as idle:
        assert _read_all(idle).startswith(b"HTTP/1.1 200 ")


def test_connections_beyond_the_limit_get_503(serve: Callable[..., Served]) -> None:
    served = serve(limit_concurrency=3, header_timeout=60)
    held = [_raw(served.port, b"POST /slack/events HTTP/1.1\r\n") for _ in range(3)]
    try:
        wait_for(lambda: _health_status(served.base) == 503, what="503 over the limit")
    finally:
        for sock in held:
            sock.close()
    wait_for(lambda: _health_status(served.base) == 200, what="served again")


def _health_status(base: str) -> int:
    try:
        with urllib.request.urlopen(base + "/healthz", timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


MALFORMED = [
    ({"type": "view_submission", "user": {"id": "U1"}, "view": {"id": "V1", "callback_id": "deal_join",
                                                                 "state": {"values": {}}}}, "'view' has no 'type'"),
    ({"type": "block_actions", "user": "U1", "actions": []}, "'user' must be an object"),
    ({"type": "block_actions", "user": {"id": 5}}, "'user.id' must be a string"),
    ({"type": "view_submission", "view": "x"}, "'view' must be an object"),
    ({"type": "block_actions", "user": {"id": "U1"}, "actions": "x"}, "'actions' must be a list"),
    ({"type": "block_actions", "user": {"id": "U1"}, "actions": [7]}, "'actions[0]' must be an object"),
    ({"type": "view_submission", "user": {"id": "U1"}, "view": {"type": "modal", "callback_id": "deal_join",
                                                                 "state": {"values": []}}},
     "'view.state.values' must be an object"),
    ({"type": ["block_actions"]}, "'type' must be a string"),
]


def test_a_signed_payload_of_the_wrong_shape_is_a_400_naming_the_field(
        served: Served, caplog: pytest.LogCaptureFixture) -> None:
    for payload, error in MALFORMED:
        body = payload_body(payload)
        status, answer = _post(served.base, body, _signed(body))
        assert status == 400 and json.loads(answer)["error"].startswith(error), payload
    assert "Traceback" not in caplog.text
