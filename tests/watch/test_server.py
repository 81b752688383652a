"""The page's server kept as a local development server should be, probed with real HTTP on 127.0.0.1.

A page on another site (a cross-site POST, a DNS-rebinding Host) cannot drive the run; bad control bodies,
bad lengths, unknown methods and over-large requests get a JSON error naming why; a silent connection, or one
that stops reading its event stream, is dropped; event streams and connections are capped.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator
from email.message import Message
from typing import Any

import pytest

from running.runfolder import RunFolder
from watch.controls import MAX_SPEED, Controls
from watch.hub import Hub
from watch.replay import LedgerWatch
from watch.server import MAX_BODY, WatchServer

Reply = tuple[int, Message, Any]  # the headers' names are case-insensitive


@pytest.fixture
def server() -> Iterator[WatchServer]:
    """A server for a two-market run whose controls have not been touched."""
    hub = Hub()
    hub.publish('{"status": "running"}')
    served = WatchServer(hub, Controls(market="A", markets=("A", "B"))).start()
    yield served
    served.stop()


@pytest.fixture(scope="module")
def replayed(smoke_run: RunFolder) -> Iterator[tuple[WatchServer, dict[str, Any]]]:
    """The smoke run replayed to its end at full speed, and its last snapshot (it names real listings)."""
    controls = Controls(market="", speed=MAX_SPEED)
    watch = LedgerWatch(smoke_run, controls)
    served = WatchServer(watch.hub, controls).start()
    watch.start()
    try:
        port = served.server_address[1]
        with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
            sock.sendall(f"GET /events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            for line in sock.makefile("rb"):
                if line.startswith(b"data: ") and json.loads(line[6:])["status"] == "complete":
                    break
        yield served, json.loads(watch.hub.latest()[1])
    finally:
        watch.stop()
        served.stop()


def ask(server: WatchServer, method: str, path: str, body: bytes | None = None, **headers: str) -> Reply:
    """One request (headers given with underscores for dashes); a JSON reply comes back parsed."""
    port = server.server_address[1]
    headers = {"Host": f"127.0.0.1:{port}", **{k.replace("_", "-"): v for k, v in headers.items()}}
    if body is not None:
        headers.setdefault("Content-Type", "application/json")
        headers.setdefault("Content-Length", str(len(body)))
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders(body)
        reply = conn.getresponse()
        data = reply.read()
        kind = reply.headers.get("Content-Type", "")
        return reply.status, reply.headers, json.loads(data) if data and kind == "application/json" else data
    finally:
        conn.close()


def control(server: WatchServer, request: object, **headers: str) -> Reply:
    """A control POSTed as the page posts it (unless ``headers`` say otherwise)."""
    return ask(server, "POST", "/control", json.dumps(request).encode(), **headers)


def raw(server: WatchServer, data: bytes) -> bytes:
    """Send ``data`` as is; everything the server answers until it closes the connection."""
    with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=60) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def untouched(server: WatchServer) -> bool:
    controls = server.controls
    return (controls.version, controls.steps, controls.paused) == (0, 0, False)


# --- W1: only the page itself drives the run ---------------------------------------------------------------

def test_a_page_on_another_site_cannot_drive_the_run(server: WatchServer) -> None:
    """A text/plain POST needs no CORS preflight: any page could send it, so it is refused however it comes."""
    body = b'{"action": "step"}'
    status, _, reply = ask(server, "POST", "/control", body, Origin="http://evil.example",
                           Content_Type="text/plain")
    assert status == 403 and "refused: a control from the page at 'http://evil.example'" in reply["error"]
    status, _, reply = ask(server, "POST", "/control", body, Content_Type="text/plain")
    assert status == 415 and "Content-Type: application/json (not 'text/plain')" in reply["error"]
    status, _, reply = ask(server, "POST", "/control", body, Origin="null")
    assert status == 403
    status, _, reply = ask(server, "POST", "/control", body, Content_Type="application/x-www-form-urlencoded")
    assert status == 415
    assert untouched(server)
    port = server.server_address[1]
    for origin in (f"http://127.0.0.1:{port}", None):  # the page's own origin, or a client that sends none
        status, _, reply = ask(server, "POST", "/control", body, **({"Origin": origin} if origin else {}))
        assert (status, reply) == (200, {"ok": True})
    assert server.controls.steps == 2


@pytest.mark.parametrize("host", ["evil.example:{port}", "evil.example", "127.0.0.1:1", "127.0.0.1",
                                  "evil@127.0.0.1:{port}", "127.0.0.1:{port}/x", ""])
def test_a_host_the_server_does_not_answer_to_is_refused(server: WatchServer, host: str) -> None:
    """DNS rebinding: a page at evil.example whose name now points at 127.0.0.1 sends Host: evil.example."""
    port = server.server_address[1]
    named = host.format(port=port)
    for method, path, body in (("GET", "/state", None), ("GET", "/", None), ("GET", "/events", None),
                               ("POST", "/control", b'{"action": "resume"}')):
        status, _, reply = ask(server, method, path, body, Host=named)
        assert status == 403, (method, path)
        assert reply["error"].startswith(f"refused: Host {named!r} is not this server (it answers to ")
        assert f"127.0.0.1:{port}, [::1]:{port}, localhost:{port}" in reply["error"]
    assert untouched(server)


def test_the_names_of_loopback_are_answered(server: WatchServer) -> None:
    port = server.server_address[1]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}", f"[::1]:{port}"):
        status, _, reply = ask(server, "GET", "/state", Host=host)
        assert (status, reply) == (200, {"status": "running"}), host
    status, _, reply = control(server, {"action": "pause"}, Host=f"localhost:{port}", Origin=f"http://localhost:{port}")
    assert (status, reply) == (200, {"ok": True})
    status, _, _ = control(server, {"action": "pause"}, Host=f"localhost:{port}", Origin=f"http://127.0.0.1:{port}")
    assert status == 403, "a page at 127.0.0.1 is not the page at localhost"


def test_the_page_script_posts_json() -> None:
    """The page's own fetch sends the Content-Type the server requires (test_page.py drives it in Chromium)."""
    from importlib import resources

    script = (resources.files("watch") / "static" / "page.js").read_text(encoding="utf-8")
    assert 'fetch("/control", {method: "POST", headers: {"Content-Type": "application/json"}' in script


# --- W2: values of the wrong type ----------------------------------------------------------------------------

@pytest.mark.parametrize(("request_", "reason"), [
    ({"action": "speed", "value": [1]}, "speed: the value must be a string, not [1]"),
    ({"action": "speed", "value": 3600}, "speed: the value must be a string, not 3600"),
    ({"action": "speed", "value": {"a": 1}}, "speed: the value must be a string, not {'a': 1}"),
    ({"action": "market", "value": ["A"]}, "market: the value must be a string, not ['A']"),
    ({"action": "listing", "value": 5}, "listing: the value must be a string, not 5"),
    ({"action": ["step"]}, "unknown action ['step']; choose one of pause, resume, step, speed, market, listing"),
    ({"action": {"x": 1}}, "unknown action {'x': 1}"),
    ({}, "unknown action None"),
])
def test_a_value_of_the_wrong_type_is_a_400(server: WatchServer, request_: dict[str, Any], reason: str) -> None:
    status, _, reply = control(server, request_)
    assert status == 400 and reply["error"].startswith(reason)
    assert untouched(server)


def test_an_unexpected_failure_is_a_500_without_a_traceback(server: WatchServer,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    def broken(market: str, listing: str) -> bool:
        raise RuntimeError("a bug in the watched run")

    server.controls.has_listing = broken
    status, _, reply = control(server, {"action": "listing", "value": "L1"})
    assert status == 500
    assert reply == {"error": "the watch server failed on this request; its terminal has the details"}
    assert "RuntimeError: a bug in the watched run" in capsys.readouterr().err
    status, _, reply = ask(server, "GET", "/state")
    assert status == 200, "the server goes on"


@pytest.mark.parametrize("body", [b"[1, 2]", b"not json", b"", b"\xff\xfe", b"[" * 2000 + b"]" * 2000])
def test_a_body_that_is_not_a_json_object_is_a_400(server: WatchServer, body: bytes) -> None:
    status, _, reply = ask(server, "POST", "/control", body)
    assert status == 400 and ("not JSON" in reply["error"] or "send a JSON object" in reply["error"])
    assert len(reply["error"]) < 300


# --- W3: sizes, and listings the run has ---------------------------------------------------------------------

def test_a_large_body_is_refused_unread(server: WatchServer) -> None:
    """Only the headers are sent: the server answers 413 without waiting for 10 MB."""
    port = server.server_address[1]
    head = (f"POST /control HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: 10000000\r\n\r\n").encode()
    reply = raw(server, head)
    assert reply.startswith(b"HTTP/1.1 413 ")
    assert b'{"error": "a control is at most 4,096 bytes; this one is 10,000,000"}' in reply
    status, _, reply = control(server, {"action": "listing", "value": "x" * 100_000})
    assert status == 413
    assert untouched(server)


def test_a_value_quoted_in_an_error_is_clipped(server: WatchServer) -> None:
    for request in ({"action": "x" * 4000}, {"action": "speed", "value": "y" * 4000},
                    {"action": "market", "value": "z" * 4000}):
        assert len(json.dumps(request)) <= MAX_BODY
        status, _, reply = control(server, request)
        assert status == 400 and "(4,002 characters)" in reply["error"] and len(reply["error"]) < 300


def test_a_listing_the_run_does_not_have_is_refused(replayed: tuple[WatchServer, dict[str, Any]]) -> None:
    served, snapshot = replayed
    market, listing = served.controls.market, snapshot["thread"]["listing"]
    status, _, reply = control(served, {"action": "listing", "value": "L-none"})
    assert status == 400
    assert reply["error"] == f"unknown listing 'L-none'; market {market} has no such listing"
    status, _, reply = control(served, {"action": "listing", "value": "x" * 1000})
    assert status == 400 and reply["error"] == "listing: an id is at most 200 characters, not 1,000"
    assert served.controls.listing is None
    status, _, reply = control(served, {"action": "listing", "value": listing})
    assert (status, reply) == (200, {"ok": True})
    assert served.controls.listing == listing
    status, _, reply = control(served, {"action": "listing", "value": None})
    assert (status, reply) == (200, {"ok": True})
    assert served.controls.listing is None


# --- W4: Content-Length ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("length", ["abc", "-1", "1e3", "", "5, 6", "5\r\nContent-Length: 6"])
def test_a_bad_content_length_is_a_400(server: WatchServer, length: str) -> None:
    """'-1' once hung the handler (rfile.read(-1) waits for the client to close).

    h11 reads the lengths now: it takes "5, 5" (one length, repeated) as 5, as RFC 9110 section 8.6 allows, where
    http.server's handler refused it; two lengths that differ are refused.
    """
    port = server.server_address[1]
    reply = raw(server, (f"POST /control HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {length}\r\n\r\n").encode())
    assert reply.startswith(b"HTTP/1.1 400 ")
    error = json.loads(reply.split(b"\r\n\r\n", 1)[1])["error"]
    assert error in ("bad Content-Length", "conflicting Content-Length headers")
    assert untouched(server)


def test_a_post_without_content_length_or_chunked_is_a_411(server: WatchServer) -> None:
    """Chunk bytes once were parsed as a second request; now one answer, and the connection closes."""
    port = server.server_address[1]
    head = f"POST /control HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
    chunked = raw(server, (head + "Transfer-Encoding: chunked\r\n\r\n12\r\n{\"action\": \"step\"}\r\n0\r\n\r\n"
                           ).encode())
    assert chunked.startswith(b"HTTP/1.1 411 ") and chunked.count(b"HTTP/1.1 ") == 1
    assert b"a control needs a Content-Length" in chunked
    assert raw(server, (head + "\r\n").encode()).startswith(b"HTTP/1.1 411 ")
    assert untouched(server)


# --- W5: timeouts and the cap on event streams ----------------------------------------------------------------

def test_a_silent_connection_is_dropped() -> None:
    """Half a request, then nothing: the server closes the connection (it once held a thread forever)."""
    server = WatchServer(Hub(), Controls(market="A", markets=("A",)), request_timeout=0.5).start()
    try:
        port = server.server_address[1]
        for partial in (b"GET /state HTTP/1.1\r\nHost: 127.0.0", b"",
                        f"POST /control HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                        "Content-Length: 100\r\n\r\n{".encode()):
            assert raw(server, partial) == b""  # raw reads until the server closes (the client waits up to 60 s)
    finally:
        server.stop()


def test_event_streams_outlive_the_request_timeout_and_are_capped() -> None:
    hub = Hub()
    hub.publish('{"n": 1}')
    server = WatchServer(hub, Controls(market="A", markets=("A",)), request_timeout=0.5, max_streams=2).start()
    port = server.server_address[1]
    streams = [socket.create_connection(("127.0.0.1", port), timeout=60) for _ in range(2)]
    try:
        readers = []
        for sock in streams:
            sock.sendall(f"GET /events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            reader = sock.makefile("rb")
            assert reader.readline().startswith(b"HTTP/1.1 200 ")
            assert next(line for line in reader if line.startswith(b"data: ")) == b'data: {"n": 1}\n'
            readers.append(reader)
        status, _, reply = ask(server, "GET", "/events")
        assert status == 503
        assert reply["error"] == ("too many pages open: this server holds at most 2 event streams; "
                                  "close a page and reload")
        assert ask(server, "GET", "/state")[0] == 200, "the rest of the server still answers"
        time.sleep(1.0)  # twice the request timeout: an idle stream is not a stalled request
        hub.publish('{"n": 2}')
        for reader in readers:
            assert next(line for line in reader if line.startswith(b"data: ")) == b'data: {"n": 2}\n'
    finally:
        for sock in streams:
            sock.close()
        server.stop()


def test_connections_beyond_the_cap_get_a_503() -> None:
    """Two keep-alive connections are all the server serves; a request on a third is answered 503 and closed.

    uvicorn's ``limit_concurrency`` answers when a request comes, with its own text/plain 503 (http.server's
    thread cap answered on connecting, in JSON); once a connection closes the server answers again.
    """
    server = WatchServer(Hub(), Controls(market="A", markets=("A",)), max_connections=2).start()
    port = server.server_address[1]
    held = [http.client.HTTPConnection("127.0.0.1", port, timeout=60) for _ in range(2)]
    try:
        for conn in held:  # one answer each: the server has taken the connection, and keeps it open
            conn.request("GET", "/state")
            assert conn.getresponse().read() == b"{}"
        reply = raw(server, f"GET /state HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        assert reply.startswith(b"HTTP/1.1 503 ") and reply.endswith(b"\r\n\r\nService Unavailable")
        held.pop().close()
        deadline = time.monotonic() + 60
        while ask(server, "GET", "/state")[0] != 200:  # until the server has seen the close
            assert time.monotonic() < deadline, "the server did not answer again after a connection closed"
            time.sleep(0.05)
    finally:
        for conn in held:
            conn.close()
        server.stop()


def test_a_page_that_stops_reading_its_stream_is_cut_off() -> None:
    """Snapshots piling up unread for request_timeout seconds close the connection, and free its stream."""
    hub = Hub()
    server = WatchServer(hub, Controls(market="A", markets=("A",)), request_timeout=0.5, max_streams=1).start()
    port = server.server_address[1]
    big = json.dumps({"pad": "x" * 1_000_000})
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(60)
        sock.connect(("127.0.0.1", port))
        sock.sendall(f"GET /events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())  # and never reads
        try:
            deadline = time.monotonic() + 60
            while ask(server, "HEAD", "/events")[0] == 503:  # HEAD asks for a stream without opening one
                assert time.monotonic() < deadline, "a stream nobody reads was never cut off"
                hub.publish(big)
                time.sleep(0.05)
            assert ask(server, "HEAD", "/events")[0] == 200
        finally:
            server.stop()


# --- methods and paths ---------------------------------------------------------------------------------------

def test_other_methods_are_a_405_naming_the_allowed_one(server: WatchServer) -> None:
    """HEAD is answered wherever GET is (Starlette's routes, as RFC 9110 asks; http.server's handler refused it
    with a 405), so Allow names both there."""
    for method, path, allowed in (("PUT", "/control", "POST"), ("DELETE", "/state", "GET, HEAD"),
                                  ("PATCH", "/", "GET, HEAD"), ("GET", "/control", "POST"),
                                  ("POST", "/state", "GET, HEAD"), ("BREW", "/", "GET, HEAD")):
        status, headers, reply = ask(server, method, path, b"{}" if method != "GET" else None)
        assert (status, headers["Allow"]) == (405, allowed), (method, path)
        assert reply["error"] == f"{method!r} is not allowed on {path}; use {allowed.split(',')[0]}"
    status, headers, _ = ask(server, "HEAD", "/control")
    assert (status, headers["Allow"]) == (405, "POST")
    status, headers, reply = ask(server, "HEAD", "/state")
    assert (status, headers["Content-Type"], reply) == (200, "application/json", b"")
    status, _, reply = ask(server, "GET", "/nowhere")
    assert status == 404 and reply["error"] == "nothing at '/nowhere'; the page is at /"
    assert untouched(server)


def test_a_query_string_does_not_hide_the_control(server: WatchServer) -> None:
    status, _, reply = ask(server, "POST", "/control?x=1", b'{"action": "step"}')
    assert (status, reply) == (200, {"ok": True})
    assert server.controls.steps == 1


@pytest.mark.parametrize(("request_", "answer", "error"), [
    (b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n", b"HTTP/1.1 431 ",
     "a request's line and headers are at most 16,384 bytes"),
    (b"BREW /pot HTTP/1.1\r\n\r\n", b"HTTP/1.1 400 ", "Missing mandatory Host: header"),
    (b"GET " + b"x" * 5000 + b" y HTTP/1.1\r\n\r\n", b"HTTP/1.1 400 ", "illegal request line: bytearray(b'GET xxx"),
    (b"GARBAGE" + b"x" * 5000 + b"\r\n\r\n", b"HTTP/1.1 400 ", "illegal request line: bytearray(b'GARBAGExxx"),
])
def test_what_h11_refuses_itself_is_json_too(server: WatchServer, request_: bytes, answer: bytes, error: str) -> None:
    """h11 reads the requests now: one without a Host is a 400 as RFC 9112 section 3.2 asks (http.server said 501
    to the unknown method first), and a line that is no request gets a whole answer (http.server took it for
    HTTP/0.9 and sent a bare body)."""
    reply = raw(server, request_)
    assert reply.startswith(answer)
    head, body = reply.split(b"\r\n\r\n", 1)
    assert b"content-type: application/json" in head.lower()
    assert json.loads(body)["error"].startswith(error)
    assert len(body) < 300
