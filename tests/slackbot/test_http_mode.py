"""HTTP mode for production: the real command line under uvicorn on 127.0.0.1, signed requests over real
HTTP, a health endpoint, no request body in the log on a bad signature, graceful SIGTERM (exit 0)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.slackbot.conftest import ROOT, SECRET, TOKEN, command_body, live_scenario
from tests.slackbot.live import wait_for
from tests.slackbot.slack_stub import SlackStub


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _post(url: str, body: str, headers: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _health(base: str) -> dict | None:  # type: ignore[type-arg]
    try:
        with urllib.request.urlopen(base + "/healthz", timeout=2) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]
    except OSError:
        return None


def _signed(body: str) -> dict[str, str]:
    import time

    from slack_sdk.signature import SignatureVerifier

    ts = str(int(time.time()))
    return {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body)}


def _no_admin_scenario(tmp_path: Path) -> Path:
    """The live scenario with no admins in its slack section."""
    scenario = live_scenario(tmp_path)
    data = yaml.safe_load(scenario.read_text())
    data["slack"]["admins"] = []
    scenario.write_text(yaml.safe_dump(data))
    return scenario


def _host_env(stub: SlackStub) -> dict[str, str]:
    """The environment of ``slackbot host`` talking to ``stub`` (and nothing else of this process's)."""
    return {"SLACK_BOT_TOKEN": TOKEN, "SLACK_API_URL": stub.base_url, "SLACK_SIGNING_SECRET": SECRET,
            "PATH": "/usr/bin:/bin"}


@pytest.mark.slow
def test_http_mode_under_uvicorn(stub: SlackStub, tmp_path: Path) -> None:
    scenario = _no_admin_scenario(tmp_path)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = _host_env(stub)
    proc = subprocess.Popen(
        [sys.executable, "-m", "slackbot", "host", str(scenario), "--http", "--host", "127.0.0.1", "--port",
         str(port), "--out", str(tmp_path / "run"), "--admin", "UCLI1", "--speed", "1"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        health = wait_for(lambda: _health(base) or proc.poll() is not None, timeout=60, what="healthz")
        assert proc.poll() is None and health["ok"] is True  # type: ignore[index]
        # the command-line admin may run the week
        pending = command_body("admin pending", "UCLI1", stub.respond_url + "x")
        status, _ = _post(base + "/slack/events", pending, _signed(pending))
        assert status == 200
        wait_for(lambda: any("approvals waiting" in r.get("text", "") for r in stub.state.responses),
                 what="admin answer")
        # a forged request is refused and its body is not logged
        secret_body = command_body("status SECRET-BODY-TEXT", "UX", "http://x")
        status, _ = _post(base + "/slack/events", secret_body,
                          {**_signed(secret_body), "X-Slack-Signature": "v0=" + "0" * 64})
        assert status == 401
        assert _post(base + "/nowhere", "", {})[0] == 404
        # junk is refused before it is parsed; signed junk is a 400, an odd timestamp a 401, never a 500
        assert _post(base + "/slack/events", "{bad", {"Content-Type": "application/json"})[0] == 401
        assert _post(base + "/slack/events", "{bad", {**_signed("{bad"), "Content-Type": "application/json"})[0] == 400
        odd_time = {**_signed(pending), "X-Slack-Request-Timestamp": "abc"}
        assert _post(base + "/slack/events", pending, odd_time)[0] == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "No admins" not in out + err  # --admin gave one
    assert "SECRET-BODY-TEXT" not in out + err and TOKEN not in out + err
    assert "Traceback" not in out + err
    assert (tmp_path / "run" / "slack.sqlite").is_file()


@pytest.mark.slow
def test_a_week_with_no_admin_says_so_at_start(stub: SlackStub, tmp_path: Path) -> None:
    scenario = _no_admin_scenario(tmp_path)
    port = _free_port()
    env = _host_env(stub)
    proc = subprocess.Popen(
        [sys.executable, "-m", "slackbot", "host", str(scenario), "--http", "--host", "127.0.0.1", "--port",
         str(port), "--out", str(tmp_path / "run")],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: _health(f"http://127.0.0.1:{port}") or proc.poll() is not None, timeout=60, what="up")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "No admins" in out and "--admin" in out
