"""Whole smoke days on the fake model APIs through the real SDKs: faults, record and replay, cost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.llm.agent import ReplayMiss
from market.ledger import Ledger
from running import runner
from running.runfolder import RunFolder
from tests.conftest import run_cli
from tests.llm.conftest import SMOKE, export, model_tiers, run_model, summary
from tests.market.helpers import assert_conserved

pytestmark = pytest.mark.slow


def test_record_then_replay_with_the_server_stopped(fake_server, tmp_path: Path) -> None:
    server = fake_server("anthropic")
    result = run_model(tmp_path / "rec", model_tiers(server))
    assert result.complete and result.summary.markets[0].deals > 0
    llm = result.summary.llm
    assert llm["total"]["calls"] == server.answered > 0
    assert llm["total"]["cost_nanocents"] > 0 and llm["total"]["cache_read_tokens"] > 0
    assert set(llm["tiers"]) == {"frontier", "small"}
    cassette = [json.loads(line) for line in (tmp_path / "rec" / "cassette.jsonl").read_text().splitlines()]
    assert {e["kind"] for e in cassette} == {"tier", "call"}
    assert all(e["request_id"].startswith("req_") for e in cassette if e["kind"] == "call")
    assert (tmp_path / "rec" / "instructions").is_dir()
    server.stop()  # no network from here on
    replay = {"frontier": {"backend": "replay"}, "small": {"backend": "replay"}}
    again = run_model(tmp_path / "replay", replay, options={"cassette": str(tmp_path / "rec" / "cassette.jsonl")})
    assert again.complete
    assert export(tmp_path / "replay") == export(tmp_path / "rec")
    assert again.summary.llm["total"]["replayed_calls"] == again.summary.llm["total"]["calls"]
    assert again.summary.llm["total"]["spent_usd"] == 0
    assert_conserved(tmp_path / "rec")


@pytest.mark.parametrize("mode", [
    "rate_limit", "overloaded", "server_error", "slow", "malformed", "unknown_tool", "max_tokens", "refusal",
])
@pytest.mark.parametrize("api", ["anthropic", "openai"])
def test_a_day_completes_under_every_fault(fake_server, tmp_path: Path, api: str, mode: str) -> None:
    server = fake_server(api, faults={mode: 4}, slow_seconds=0.5)
    result = run_model(tmp_path / "run", model_tiers(server, api, timeout=0.25))
    assert result.complete
    assert server.faults_sent.get(mode, 0) > 0
    assert server.refused == []  # every request met the API's contract, repairs included
    faults = summary(tmp_path / "run")["llm"]["total"]["faults"]
    expected = {
        "rate_limit": "rate_limited", "overloaded": "overloaded" if api == "anthropic" else "server_error",
        "server_error": "server_error", "slow": "timeout", "malformed": "malformed_calls",
        "unknown_tool": "malformed_calls", "max_tokens": "cut_off", "refusal": "refusals",
    }[mode]
    assert faults.get(expected, 0) > 0, faults
    if mode in ("malformed", "unknown_tool", "max_tokens"):
        assert faults["repair_attempts"] > 0
    assert_conserved(tmp_path / "run")


def test_the_mandate_holds_against_an_agent_that_ignores_its_principal(fake_server, tmp_path: Path) -> None:
    server = fake_server("anthropic", faults={"adversarial": 2})
    result = run_model(tmp_path / "run", model_tiers(server))
    assert result.complete
    with Ledger(tmp_path / "run" / "ledger.sqlite") as ledger:
        state = ledger.replay("A")
        lines = [json.loads(line)["event"] for line in ledger.export_lines()]
    refused = {e["code"] for e in lines if e["type"] == "action_rejected"}
    assert "below_reserve" in refused and refused & {"insufficient_funds", "above_max_price"}
    for deal in state.deals:
        seller, buyer = state.participants[deal.seller], state.participants[deal.buyer]
        reserve = seller.reserves.get(deal.item_id)
        assert reserve is None or deal.price >= reserve
        want = buyer.want_for(state.items[deal.item_id].kind)
        assert want is None or deal.price <= want.max_price
    assert_conserved(tmp_path / "run")


def test_max_cost_stops_cleanly_and_resume_replays_for_free(fake_server, tmp_path: Path) -> None:
    reference = run_model(tmp_path / "ref", model_tiers(fake_server("anthropic")))
    assert reference.complete
    server = fake_server("anthropic")
    tiers = model_tiers(server)

    def cap(model, at):  # what --max-cost does
        if model_cost(model) >= 0.10:
            model.stop("max cost")

    from running.hooks import model_cost
    stopped = run_model(tmp_path / "run", tiers, on_batch=cap)
    assert not stopped.complete and stopped.stopped == "max cost"
    calls_before = server.answered
    resumed = runner.resume(RunFolder.open(tmp_path / "run"), tiers=tiers, options={"retry_wait": 0.01})
    assert resumed.complete
    assert export(tmp_path / "run") == export(tmp_path / "ref")
    llm = resumed.summary.llm["total"]
    asked = summary(tmp_path / "run")["survey"]["total"]  # the fairness survey after the resumed run is complete
    sent = llm["calls"] - llm["replayed_calls"] + asked["calls"] - asked["replayed_calls"]
    assert llm["replayed_calls"] > 0 and server.answered - calls_before == sent


def test_a_request_missing_from_the_cassette_names_trader_and_step(fake_server, tmp_path: Path) -> None:
    server = fake_server("anthropic")
    run_model(tmp_path / "rec", model_tiers(server))
    server.stop()
    lines = (tmp_path / "rec" / "cassette.jsonl").read_text().splitlines()
    calls = [i for i, line in enumerate(lines) if '"kind":"call"' in line]
    cut = tmp_path / "cut.jsonl"
    cut.write_text("\n".join(lines[: calls[len(calls) // 2]]) + "\n")
    replay = {"frontier": {"backend": "replay"}, "small": {"backend": "replay"}}
    with pytest.raises(ReplayMiss, match=r"no answer for trader p\d+ in market A at step \d+"):
        run_model(tmp_path / "replay", replay, options={"cassette": str(cut)})


def test_insufficient_quota_stops_the_run_with_the_reason(fake_server, tmp_path: Path) -> None:
    server = fake_server("openai", faults={"quota": 3})
    stopped = run_model(tmp_path / "run", model_tiers(server, "openai"))  # stops cleanly after the batch
    assert stopped.cause == "fatal" and "insufficient quota" in (stopped.stopped or "")
    assert stopped.summary.status == "stopped" and stopped.summary.llm is not None
    assert_conserved(tmp_path / "run")


def test_cli_reports_setup_problems_before_the_run(fake_server, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    out = run_cli(SMOKE, "--out", tmp_path / "a", "--backend", "frontier=anthropic:claude-opus-4-5", "-q")
    assert out.returncode == 2 and "set ANTHROPIC_API_KEY" in out.stderr and not (tmp_path / "a").exists()
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    out = run_cli(SMOKE, "--out", tmp_path / "b", "--backend", "small=anthropic:claude-haiku-9", "-q")
    assert out.returncode == 2 and "unknown model 'claude-haiku-9'" in out.stderr
    out = run_cli(SMOKE, "--out", tmp_path / "c", "--backend", "small=replay", "-q")
    assert out.returncode == 2 and "--cassette" in out.stderr
    # a tier the scenario does not have was ignored, and the run went on without the model
    out = run_cli(SMOKE, "--out", tmp_path / "d", "--backend", "smal=anthropic:claude-haiku-4-5", "-q")
    assert out.returncode == 2 and "--backend: unknown tier smal (scenario has frontier, small)" in out.stderr
    out = run_cli(SMOKE, "--out", tmp_path / "e", "--backend", "small=" + "x" * 3_000, "-q")
    assert out.returncode == 2 and "--backend: at most 500 characters" in out.stderr and len(out.stderr) < 500
    out = run_cli(SMOKE, "--out", tmp_path / "f", "--backend", "small=" + "x" * 400, "-q")
    assert out.returncode == 2 and "unknown backend 'xxxx" in out.stderr and len(out.stderr) < 500
    assert not any((tmp_path / name).exists() for name in "def")


def test_cli_runs_on_the_fake_api_with_cost_and_replays(fake_server, tmp_path: Path, monkeypatch) -> None:
    server = fake_server("anthropic")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", f"http://127.0.0.1:{server.port}")
    out = run_cli(SMOKE, "--out", tmp_path / "rec", "--concurrency", "4",
                  "--backend", "frontier=anthropic:claude-opus-4-5", "--backend", "small=anthropic:claude-haiku-4-5")
    assert out.returncode == 0, out.stderr
    assert "cost/deal" in out.stdout and "claude-opus-4-5" in out.stdout
    server.stop()
    out = run_cli(SMOKE, "--out", tmp_path / "rep", "--backend", "frontier=replay", "--backend", "small=replay",
                  "--cassette", tmp_path / "rec" / "cassette.jsonl", "-q")
    assert out.returncode == 0, out.stderr
    assert export(tmp_path / "rep") == export(tmp_path / "rec")


@pytest.mark.parametrize(("mode", "kind"), [
    ("bad_request", "bad_request"), ("context", "context_too_long"), ("hostile_json", "hostile_json"),
])
@pytest.mark.parametrize("api", ["anthropic", "openai"])
def test_a_failed_turn_costs_the_trader_its_turn_not_the_week(
    fake_server, tmp_path: Path, api: str, mode: str, kind: str
) -> None:
    server = fake_server(api, faults={mode: 7})
    result = run_model(tmp_path / "run", model_tiers(server, api))
    assert result.complete and server.faults_sent.get(mode, 0) > 0
    assert server.refused == []  # the conversation after a failed turn is a valid one
    llm = summary(tmp_path / "run")["llm"]["total"]
    with Ledger(tmp_path / "run" / "ledger.sqlite") as ledger:
        failed = [json.loads(line)["event"] for line in ledger.export_lines() if '"agent_failed"' in line]
    assert failed and {e["kind"] for e in failed} == {kind} and len(failed) == llm["failures"][kind]
    assert all(e["tier"] in ("frontier", "small") and e["reason"] for e in failed)
    cassette = [json.loads(line) for line in (tmp_path / "run" / "cassette.jsonl").read_text().splitlines()]
    recorded = sum(1 for e in cassette if e.get("failure"))  # refusals and unreadable bodies, as they came
    if api == "openai" and mode == "hostile_json":  # most in the tool arguments of a readable body
        assert 0 < recorded < llm["failures"][kind]
    else:
        assert recorded == llm["failures"][kind]
    assert_conserved(tmp_path / "run")
    server.stop()  # the failed turns replay the same way, with no network
    replay = {"frontier": {"backend": "replay"}, "small": {"backend": "replay"}}
    run_model(tmp_path / "replay", replay, options={"cassette": str(tmp_path / "run" / "cassette.jsonl")})
    assert export(tmp_path / "replay") == export(tmp_path / "run")


@pytest.mark.parametrize(("mode", "cause"), [
    ("auth", "authentication failed"), ("permission", "permission denied"), ("billing", "billing"),
    ("unknown_model", "unknown model"),
])
def test_an_account_error_stops_the_run_cleanly_and_keeps_every_answer(
    fake_server, tmp_path: Path, mode: str, cause: str
) -> None:
    server = fake_server("anthropic", faults={mode: 40})
    stopped = run_model(tmp_path / "run", model_tiers(server), options={"concurrency": 8})
    assert stopped.cause == "fatal" and cause in (stopped.stopped or ""), stopped.stopped
    assert stopped.summary.status == "stopped"
    cassette = [json.loads(line) for line in (tmp_path / "run" / "cassette.jsonl").read_text().splitlines()]
    assert sum(1 for e in cassette if e.get("response")) == server.answered  # every answer paid for is kept
    assert server.faults_sent[mode] == 1  # nothing more was sent once the account was refused
    assert_conserved(tmp_path / "run")
