"""A model API that cannot be reached stops the run in seconds (exit 3), naming the URL and the resume command."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from tests.conftest import run_cli


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound to get a free one, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("api", ["anthropic", "openai"])
def test_a_run_that_cannot_reach_its_api_stops_naming_the_url(
    api: str, keys: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://127.0.0.1:{closed_port()}" + ("/v1" if api == "openai" else "")
    monkeypatch.setenv("ANTHROPIC_BASE_URL" if api == "anthropic" else "OPENAI_BASE_URL", url)
    run = tmp_path / "run"
    out = run_cli("scenarios/smoke.yaml", "--out", run, "--backend", f"frontier={api}:claude-opus-4-5",
                  "--backend", f"small={api}:claude-haiku-4-5", timeout=120)
    assert out.returncode == 3, out.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "stopped"
    assert "cannot reach" in summary["stopped"] and url in summary["stopped"], summary["stopped"]
    assert f"--resume {run}" in out.stderr and url in out.stderr
