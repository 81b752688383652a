"""One trader's failure costs it its turn; fatal errors, the circuit breaker and Ctrl-C stop a run
cleanly; a stopped run resumes byte-identical; after-run steps finish on resume; a full disk is said."""

from __future__ import annotations

import errno
import json
import os
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from agents.offline import PROFILES
from market.backends import Policy, disk_full
from market.ledger import Ledger
from market.scenario import FailureLimits
from market.state import check_invariants
from running import run as cli
from running import runner
from running.runfolder import RunFolder
from running.summary import RunSummary
from tests.conftest import ROOT, export, run_cli
from tests.market import policies

FRONTIER = ("p002", "p005", "p006", "p008")  # smoke.yaml's frontier traders (seed 7)
NO_BREAKER = FailureLimits(max_share=1.0)


def run_with(smoke: Path, out: Path, frontier: Policy | None = None, failures: FailureLimits | None = None,
             **kwargs: Any) -> runner.RunResult:
    prepared = runner.plan(smoke)
    if failures is not None:
        prepared.scenario = prepared.scenario.model_copy(update={"failures": failures})
    if frontier is not None:
        prepared.policies["frontier"] = frontier
    return runner.start(prepared, RunFolder.create(out.parent, "x", exact=out), after_run=False, **kwargs)


def failed_events(out: Path) -> list[Any]:
    with Ledger(out) as ledger:
        for market in ledger.markets():
            assert check_invariants(ledger.replay(market)) == []
        return [r.event for r in ledger.records() if r.event.type == "agent_failed"]


def offline(cls: type, **kwargs: Any) -> Policy:
    return cls(PROFILES["frontier"], seed=7, **kwargs)


def test_a_policy_that_raises_costs_those_traders_their_turns_not_the_week(smoke: Path, tmp_path: Path) -> None:
    result = run_with(smoke, tmp_path / "run", offline(policies.Raising, fail=["p002"]), NO_BREAKER)
    assert result.complete and result.summary.status == "complete"
    failed = failed_events(tmp_path / "run")
    assert failed and {(e.actor, e.tier, e.kind) for e in failed} == {("p002", "frontier", "policy_error")}
    assert "ZeroDivisionError: custom policy bug for p002" in failed[0].reason
    counts = result.summary.as_json()["failures"]["tiers"]
    assert counts["frontier"]["failed"] == len(failed) == counts["frontier"]["kinds"]["policy_error"]
    assert counts["small"] == {"turns": counts["small"]["turns"], "failed": 0, "kinds": {}}
    with Ledger(tmp_path / "run") as ledger:  # the others traded on
        sellers = {r.event.listing.seller for r in ledger.records() if r.event.type == "item_listed"}
    assert "p002" not in sellers and {"p005", "p006", "p008"} & sellers


def test_an_answer_that_is_not_a_decision_is_a_failed_turn(smoke: Path, tmp_path: Path) -> None:
    result = run_with(smoke, tmp_path / "run", offline(policies.NotADecision, fail=["p005", "p006"]), NO_BREAKER)
    failed = failed_events(tmp_path / "run")
    assert {e.actor for e in failed} == {"p005", "p006"} and {e.kind for e in failed} == {"not_a_decision"}
    assert "dict, not a Decision" in failed[0].reason
    assert result.summary.failures.tiers["frontier"].kinds == {"not_a_decision": len(failed)}


@pytest.mark.parametrize("short", [False, True])
def test_a_batch_that_fails_as_a_whole_costs_each_of_its_traders_the_turn(
        smoke: Path, tmp_path: Path, short: bool) -> None:
    result = run_with(smoke, tmp_path / "run", offline(policies.BrokenBatch, fail=["p008"], short=short), NO_BREAKER)
    assert result.complete
    failed = failed_events(tmp_path / "run")
    by_batch: dict[int, set[str]] = {}
    for e in failed:
        by_batch.setdefault(e.at, set()).add(e.actor)
    assert all("p008" in actors for actors in by_batch.values()), "only batches holding p008 failed"
    assert any(len(actors) > 1 for actors in by_batch.values()), "the whole share of the batch failed with it"
    assert {e.kind for e in failed} == {"policy_error"}
    assert ("answered 3 for 4" in failed[0].reason or "decide_batch answered" in failed[0].reason) if short \
        else "RuntimeError: the whole batch went wrong" in failed[0].reason


def test_the_circuit_breaker_stops_the_run_cleanly_and_a_raised_limit_lets_it_go_on(
        smoke: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run_with(smoke, out, offline(policies.Raising, fail=list(FRONTIER)))
    assert not result.complete and result.cause == "circuit_breaker"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "stopped" and summary["stop_cause"] == "circuit_breaker"
    assert "tier frontier failed 11 of its last 11 turns" in summary["stopped"]
    assert summary["failures"]["tiers"]["frontier"] == {"turns": 11, "failed": 11, "kinds": {"policy_error": 11}}
    assert len(failed_events(out)) == 11
    with Ledger(out) as ledger:
        assert ledger.status("state") == "stopped"
    # deterministic: the same run trips at the same event
    again = run_with(smoke, tmp_path / "again", offline(policies.Raising, fail=list(FRONTIER)))
    assert export(tmp_path / "again") == export(out) and again.stopped == result.stopped
    # the limit is not a market rule: raise it in the folder's scenario and the run goes on from where it stopped
    scenario = yaml.safe_load((out / "scenario.yaml").read_text())
    assert scenario["failures"] == {"max_share": 0.2, "window": 50}
    scenario["failures"]["max_share"] = 1.0
    scenario["tiers"]["frontier"] = {"backend": "tests.market.policies:raising",
                                     "options": {"fail": list(FRONTIER)}, "profile": "frontier"}
    (out / "scenario.yaml").write_text(yaml.safe_dump(scenario, sort_keys=False))
    resumed = runner.resume(RunFolder.open(out), after_run=False)
    assert resumed.complete and resumed.summary.status == "complete"
    frontier = resumed.summary.as_json()["failures"]["tiers"]["frontier"]
    assert frontier["failed"] == frontier["turns"] > 11
    assert export(out).startswith(export(tmp_path / "again"))


def test_a_fatal_error_stops_after_the_batch_and_resume_is_byte_identical(smoke: Path, tmp_path: Path) -> None:
    whole = run_with(smoke, tmp_path / "whole")
    out = tmp_path / "run"
    stopped = run_with(smoke, out, offline(policies.Fatal, at=13 * 3600))
    assert not stopped.complete and stopped.cause == "fatal"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "stopped" and "insufficient_quota" in summary["stopped"]
    assert summary["simulated_seconds"] >= 13 * 3600 and summary["failures"]["tiers"]["frontier"]["failed"] == 0
    assert export(tmp_path / "whole").startswith(export(out)) and export(out) != export(tmp_path / "whole")
    assert not failed_events(out), "a fatal error is no trader's fault"
    resumed = runner.resume(RunFolder.open(out), tiers={"frontier": {"backend": "tests.market.policies:topped_up"}},
                            after_run=False)
    assert resumed.complete and export(out) == export(tmp_path / "whole")
    assert resumed.summary.markets == whole.summary.markets


def test_ctrl_c_during_the_run_stops_it_after_the_batch(smoke: Path, tmp_path: Path) -> None:
    batches = Counter[str]()

    def press_ctrl_c(model: Any, at: int) -> None:
        batches["seen"] += 1
        if batches["seen"] == 20:
            os.kill(os.getpid(), signal.SIGINT)  # delivered to the handler the run installed

    out = tmp_path / "run"
    before = signal.getsignal(signal.SIGINT)  # default_int_handler, or SIG_IGN in a job started in the background
    result = run_with(smoke, out, on_batch=press_ctrl_c)
    assert result.cause == "interrupted" and not result.complete and batches["seen"] == 20
    assert json.loads((out / "summary.json").read_text())["stop_cause"] == "interrupted"
    assert signal.getsignal(signal.SIGINT) is before, "the handler is the run's alone"
    assert runner.resume(RunFolder.open(out), after_run=False).complete
    run_with(smoke, tmp_path / "whole")
    assert export(out) == export(tmp_path / "whole")


def test_after_run_steps_killed_midway_are_finished_by_resume(
        smoke: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import analysis.report

    real = analysis.report.write_report

    def killed(*args: Any, **kwargs: Any) -> Path:
        raise KeyboardInterrupt  # as if the process were stopped while the report was being written

    monkeypatch.setattr(analysis.report, "write_report", killed)
    out = tmp_path / "run"
    prepared = runner.plan(smoke)
    with pytest.raises(KeyboardInterrupt):
        runner.start(prepared, RunFolder.create(tmp_path, "x", exact=out))
    assert not (out / "report.html").exists()
    with Ledger(out) as ledger:
        assert ledger.status("state") == "complete"
        assert runner.after_run_steps(ledger) == {"fairness": True, "report": False}
    written: list[Any] = []
    monkeypatch.setattr(analysis.report, "write_report", lambda *a, **k: written.append(a) or real(*a, **k))
    result = runner.resume(RunFolder.open(out))
    assert result.complete and (out / "report.html").is_file() and len(written) == 1
    with Ledger(out) as ledger:
        assert runner.after_run_steps(ledger) == {"fairness": True, "report": True}
    runner.resume(RunFolder.open(out))
    assert len(written) == 1, "a done step is not done again"


def test_a_folder_stopped_before_its_ledger_existed_can_be_resumed_or_started_again(
        smoke: Path, tmp_path: Path) -> None:
    run_with(smoke, tmp_path / "whole")
    out = tmp_path / "run"
    folder = RunFolder.create(tmp_path, "x", exact=out)

    def set_up_then_killed() -> None:
        for name in ("scenario.yaml", "catalog.csv"):
            (out / name).write_text((tmp_path / "whole" / name).read_text())
        (out / "ledger.sqlite.partial").write_bytes(b"half a database")

    set_up_then_killed()
    assert runner.resume(RunFolder.open(out), after_run=False).complete
    assert export(out) == export(tmp_path / "whole")
    # or started again into the same folder
    for leftover in out.iterdir():
        leftover.unlink()
    set_up_then_killed()
    assert RunFolder.create(tmp_path, "x", exact=out) == folder and not any(out.iterdir())
    run_with(smoke, out)
    assert export(out) == export(tmp_path / "whole")
    with pytest.raises(ValueError, match="folder exists and is not empty"):
        RunFolder.create(tmp_path, "x", exact=out)


@pytest.mark.parametrize("where", ["ledger", "summary", "policy"])
def test_a_full_disk_is_said_with_its_own_exit_code(
        smoke: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    from market.ledger import Ledger as RealLedger

    out = tmp_path / "run"
    args = [str(smoke), "--out", str(out), "--quiet"]
    if where == "ledger":
        append = RealLedger.append_many
        calls = Counter[str]()

        def full(self: RealLedger, entries: Any) -> None:
            calls["n"] += 1
            if calls["n"] > 10:  # the database may grow no more: SQLite's own SQLITE_FULL on the next write
                pages = self._db.execute("PRAGMA page_count").fetchone()[0]
                self._db.execute(f"PRAGMA max_page_count = {pages}")
            append(self, entries)

        monkeypatch.setattr(RealLedger, "append_many", full)
    elif where == "policy":  # e.g. a model backend appending to its cassette: no trader's fault
        args += ["--backend", "frontier=tests.market.policies:disk_full"]
    else:
        def no_space(self: RunSummary, path: Path) -> None:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))

        monkeypatch.setattr(RunSummary, "write", no_space)
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == cli.ExitCode.DISK_FULL == 4, result.output
    assert "the disk is full" in result.output and f"--resume {out}" in result.output
    assert "Traceback" not in result.output
    monkeypatch.undo()
    with Ledger(out) as ledger:  # what was recorded is intact, and the run goes on from it
        assert ledger.last_seq > 0
        for market in ledger.markets():
            assert check_invariants(ledger.replay(market)) == []
        assert not [r for r in ledger.records() if r.event.type == "agent_failed"], "no trader's fault"
    freed = {"frontier": {"backend": "offline"}} if where == "policy" else None
    assert runner.resume(RunFolder.open(out), tiers=freed, after_run=False).complete


@pytest.mark.slow
def test_exit_codes_of_a_fatal_stop_and_its_resume(smoke: Path, tmp_path: Path) -> None:
    whole = tmp_path / "whole"
    assert run_cli(smoke, "--out", whole, "--quiet").returncode == 0
    scenario = yaml.safe_load(smoke.read_text())
    scenario["catalog"] = str(ROOT / "scenarios" / "catalog.csv")
    scenario["tiers"]["frontier"] = {"backend": "tests.market.policies:fatal", "options": {"at": 46_800}}
    path = tmp_path / "fatal.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    out = tmp_path / "run"
    stopped = run_cli(path, "--out", out, "--quiet")
    assert stopped.returncode == 3, stopped.stderr
    assert "stopped: insufficient_quota" in stopped.stderr
    assert f"python -m market.run --resume {out}" in stopped.stderr and "Traceback" not in stopped.stderr
    resumed = run_cli("--resume", out, "--backend", "frontier=tests.market.policies:topped_up", "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert export(out) == export(whole)


@pytest.mark.slow
def test_exit_codes_of_the_circuit_breaker_and_max_cost(smoke: Path, tmp_path: Path) -> None:
    scenario = yaml.safe_load(smoke.read_text())
    scenario["catalog"] = str(ROOT / "scenarios" / "catalog.csv")
    scenario["tiers"]["small"] = {"backend": "tests.market.policies:raising",
                                  "options": {"fail": ["p001", "p003"]}}
    path = tmp_path / "failing.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    tripped = run_cli(path, "--out", tmp_path / "tripped")
    assert tripped.returncode == 3, tripped.stderr
    assert "stopped: circuit breaker: tier small failed 11 of its last" in tripped.stderr
    assert f"--resume {tmp_path / 'tripped'}" in tripped.stderr and "Traceback" not in tripped.stderr
    assert "failed turns: small 11 of" in tripped.stdout and "policy_error 11" in tripped.stdout

    capped = run_cli(smoke, "--out", tmp_path / "capped", "--backend", "frontier=tests.market.policies:costly",
                     "--max-cost", "0.02", "--quiet")
    assert capped.returncode == 3, capped.stderr
    assert "stopped: --max-cost $0.02 reached ($0.02 spent)" in capped.stderr
    summary = json.loads((tmp_path / "capped" / "summary.json").read_text())
    assert summary["stop_cause"] == "max_cost" and summary["costly"] == {"turns": 20, "cost_usd": 0.02}
    resumed = run_cli("--resume", tmp_path / "capped", "--backend", "frontier=tests.market.policies:costly", "-q")
    assert resumed.returncode == 0, resumed.stderr
    assert run_cli(smoke, "--out", tmp_path / "whole", "-q").returncode == 0
    assert export(tmp_path / "capped") == export(tmp_path / "whole")


def test_a_refused_account_at_set_up_exits_3_and_a_bug_exits_1_without_a_traceback(
        smoke: Path, tmp_path: Path) -> None:
    refused = CliRunner().invoke(cli.app, [str(smoke), "--out", str(tmp_path / "a"), "--quiet",
                                           "--backend", "frontier=tests.market.policies:refused"])
    assert refused.exit_code == cli.ExitCode.STOPPED == 3, refused.output
    assert "stopped: authentication_error: invalid x-api-key" in refused.output
    assert f"--resume {tmp_path / 'a'}" in refused.output and "Traceback" not in refused.output
    bug = CliRunner().invoke(cli.app, [str(smoke), "--out", str(tmp_path / "b"), "--quiet",
                                       "--backend", "frontier=tests.market.policies:buggy"])
    assert bug.exit_code == cli.ExitCode.INTERNAL_ERROR == 1, bug.output
    assert "internal error: KeyError: 'a bug'" in bug.output and "Traceback" not in bug.output
    assert "Traceback" in (tmp_path / "b" / "error.txt").read_text()


def test_a_full_disk_is_known_by_sqlites_code_not_its_words(tmp_path: Path) -> None:
    import sqlite3

    db = sqlite3.connect(tmp_path / "small.sqlite")
    db.execute("CREATE TABLE t (x TEXT)")
    db.execute(f"PRAGMA max_page_count = {db.execute('PRAGMA page_count').fetchone()[0]}")
    with pytest.raises(sqlite3.OperationalError) as full:
        for _ in range(100):
            db.execute("INSERT INTO t VALUES (?)", ("x" * 4096,))
    db.close()
    assert full.value.sqlite_errorcode == sqlite3.SQLITE_FULL and disk_full(full.value)
    assert disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert not disk_full(sqlite3.OperationalError("database or disk is full"))  # words, no code from SQLite
    assert not disk_full(OSError(errno.EACCES, "Permission denied: the disk is full of nothing"))
