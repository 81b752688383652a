"""A real open-weight model in the loop: SmolLM2-135M served by llama.cpp on 127.0.0.1, no network.

Every tier of a short week runs on the real model through the real server (``backend: local``),
each answer held by llama.cpp's grammar to one action of the action schema. The model's choices are
whatever it makes of the prompt (made-up ids, odd amounts): the week must complete with no malformed
action, each refusal and failed turn be counted, money and items be conserved, and the recorded week
replay byte for byte with the server stopped.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("llama_cpp", reason='llama-cpp-python is not installed (pip install -e ".[local]")')

from agents.llm.local_backend import LocalApi
from agents.llm.local_server import LocalServer, model_file
from agents.llm.tools import HostileJson, ToolCallError, to_action
from market.backends import AgentFailure
from market.events import ParticipantJoined
from market.ledger import Ledger
from market.observation import Observation, observe
from market.state import MarketState
from running import runner
from running.runfolder import RunFolder
from tests.market.helpers import assert_conserved

# one llama.cpp server at a time: in one pytest-xdist worker, one test after another
pytestmark = [pytest.mark.local_model, pytest.mark.slow, pytest.mark.xdist_group("llama_cpp")]

ROOT = Path(__file__).resolve().parents[2]
WEEK = Path(__file__).with_name("week.yaml")


def _servers(prepared: runner.Plan) -> list[LocalServer]:
    apis = {id(t.api): t.api for p in prepared.policies.values() for t in p.tiers.values()}  # type: ignore[attr-defined]
    return [c.server for api in apis.values() if isinstance(api, LocalApi) for c in api.clients.values()]


def _run(out: Path, tiers: dict[str, dict[str, Any]] | None = None, **options: Any) -> tuple[runner.RunResult, list]:
    prepared = runner.plan(WEEK, tiers=tiers, options=options)
    servers = _servers(prepared)
    folder = RunFolder.create(out.parent, "x", exact=out)
    return runner.start(prepared, folder, after_run=False), servers


def _export(run_dir: Path) -> bytes:
    """``python -m market.ledger RUN_DIR``'s output, as a user would get it."""
    done = subprocess.run([sys.executable, "-m", "market.ledger", str(run_dir)], capture_output=True, cwd=ROOT,
                          timeout=120, check=True)
    return done.stdout


def _events(run_dir: Path) -> list[dict[str, Any]]:
    with Ledger(run_dir / "ledger.sqlite") as ledger:
        return [json.loads(line)["event"] for line in ledger.export_lines()]


def _answers(run_dir: Path) -> list[dict[str, Any]]:
    """The recorded answers of the trading calls (turns and repairs), in order."""
    out = []
    for line in (run_dir / "cassette.jsonl").read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        if entry.get("kind") == "call" and "response" in entry and entry.get("purpose") in ("turn", "repair"):
            out.append(entry["response"])
    return out


def _bad_calls(run_dir: Path) -> int:
    """Answers that are not a valid action (read back as the backend does, checked here apart from the policy)."""
    bad = 0
    for response in _answers(run_dir):
        if response["choices"][0].get("finish_reason") == "length":
            continue  # a cut-off answer is never used: counted as cut_off, not as a malformed call
        for call in LocalApi().parse(response).calls:
            try:
                to_action(call.name, call.arguments)
            except (HostileJson, ToolCallError):
                bad += 1
    return bad


def _down(url: str) -> bool:
    try:
        urllib.request.urlopen(url + "/models", timeout=2)
    except (urllib.error.URLError, OSError):
        return True
    return False


def test_a_week_on_the_real_model_completes_is_counted_and_replays(tmp_path: Path) -> None:
    result, servers = _run(tmp_path / "rec")
    assert servers and not any(s.running for s in servers), "the run stops the server it started"
    assert all(_down(s.base_url) for s in servers)
    assert result.complete, result.summary
    summary = result.summary.as_json()
    llm = summary["llm"]
    assert llm["total"]["calls"] > 0 and llm["total"]["replayed_calls"] == 0
    assert llm["total"]["cost_usd"] == 0  # priced at $0
    assert llm["total"]["input_tokens"] > 0 and llm["total"]["output_tokens"] > 0

    rec = tmp_path / "rec"
    events = _events(rec)
    faults = llm["total"]["faults"]
    # the grammar holds every answer to one action of the schema: none is malformed, as read here and as counted
    answers = _answers(rec)
    assert answers and _bad_calls(rec) == 0
    assert faults.get("malformed_calls", 0) == 0 and faults.get("repair_attempts", 0) <= faults.get("cut_off", 0)
    assert all(json.loads(a["choices"][0]["message"]["content"])["tool"] for a in answers
               if a["choices"][0]["finish_reason"] != "length")
    for log in rec.glob("local-server-*.log"):
        assert "failed to parse grammar" not in log.read_text(errors="replace")
    # every failed turn is an agent_failed event in the ledger, counted per tier in summary.json
    failed = [e for e in events if e["type"] == "agent_failed"]
    by_tier: dict[str, int] = {}
    for e in failed:
        by_tier[e["tier"]] = by_tier.get(e["tier"], 0) + 1
    counted = {t: sum(a.get("failures", {}).values()) for t, a in llm["tiers"].items()}
    assert {t: n for t, n in counted.items() if n} == by_tier
    # actions the model made up (unknown ids, amounts the mandate refuses) reach the exchange and are refused
    refused = [e for e in events if e["type"] == "action_rejected"]
    assert all(e["reason"] for e in refused)
    assert_conserved(rec)

    # replay with every server stopped: no network, the same bytes
    again, none = _run(
        tmp_path / "replay", {"frontier": {"backend": "replay"}, "small": {"backend": "replay"}},
        cassette=str(rec / "cassette.jsonl"),
    )
    assert none == []
    assert again.complete
    assert again.summary.llm["total"]["replayed_calls"] == again.summary.llm["total"]["calls"]
    assert _export(tmp_path / "replay") == _export(rec)


def test_a_prompt_past_the_context_window_is_that_traders_failed_turn(tmp_path: Path) -> None:
    # 512 tokens hold less than the rules and tools: every prompt is too long for this server
    tiers = {"frontier": {"options": {"n_ctx": 512}}, "small": {"options": {"n_ctx": 512}}}
    prepared = runner.plan(WEEK, tiers=tiers, options={})
    servers = _servers(prepared)
    assert [s.n_ctx for s in servers] == [512]
    policy = prepared.policies["small"]
    try:
        policy.open_run(tmp_path)
        observation = _first_observation(prepared)
        answer = policy.decide_batch([observation])[0]
        assert isinstance(answer, AgentFailure), answer
        assert answer.kind == "context_too_long"
        assert "context" in answer.reason
    finally:
        policy.close()
    assert not any(s.running for s in servers)


def _first_observation(prepared: runner.Plan) -> Observation:
    """The first trader's observation at 9:00 in a market where everyone has just joined."""
    people = prepared.participants
    state = MarketState.replay([ParticipantJoined(at=0, participant=p) for p in people])
    return observe(state, "A", people[0].id, "small", 9 * 3600, 0, [])


def test_the_models_ship_in_their_packages_with_checked_files() -> None:
    smol = model_file("smollm2-135m")
    assert smol.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and smol.stat().st_size > 50_000_000
    assert smol.read_bytes()[:4] == b"GGUF"


@pytest.mark.parametrize("form", ["json_object", "gbnf"])
def test_an_openai_tier_on_a_llama_cpp_server_gets_the_same_constrained_answers(
    tmp_path: Path, form: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the `openai` backend pointed at llama-cpp-python's server (started here, as one would by hand), with
    # options.constrained: every answer is one action of the schema, as on the local backend
    monkeypatch.setenv("OPENAI_API_KEY", "none")
    with LocalServer(model_file("smollm2-135m"), 4096, log=tmp_path / "server.log") as server:
        tier = {"backend": "openai", "model": "smollm2-135m", "base_url": server.base_url, "max_tokens": 200,
                "options": {"constrained": form}}
        prepared = runner.plan(WEEK, tiers={"frontier": tier, "small": tier}, options={})
        policy = prepared.policies["small"]
        try:
            policy.open_run(tmp_path)
            decision = policy.decide_batch([_first_observation(prepared)])[0]
        finally:
            policy.close()
    answers = _answers(tmp_path)
    assert answers and _bad_calls(tmp_path) == 0
    if not isinstance(decision, AgentFailure):  # (a cut-off answer and repair is a counted failure)
        [call] = LocalApi().parse(answers[-1]).calls
        assert to_action(call.name, call.arguments) == decision.actions[0]
    assert "failed to parse grammar" not in (tmp_path / "server.log").read_text(errors="replace")
