"""A policy of your own: any object with ``decide(observation)``, loaded by dotted path (from the current folder
too, also under the ``market`` console script), refused at plan time when it is no policy, and named in the
provenance as a custom policy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agents.offline import PROFILES, OfflinePolicy
from market.backends import BackendError, Decides, PlainPolicy, as_policy
from market.ledger import Ledger
from market.scenario import load_scenario
from running import runner
from running.provenance import describe_tier, provenance_lines
from running.run import backend_overrides
from running.runfolder import RunFolder
from tests.conftest import ROOT, SCENARIOS, run_cli
from tests.market import custom_agents

SMOKE = SCENARIOS / "smoke.yaml"
AGENTS = "tests.market.custom_agents"


def console(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The installed ``market`` console script (beside this interpreter), run as a shell runs it in ``cwd``."""
    script = shutil.which("market", path=str(Path(sys.executable).parent))
    assert script is not None, f"no `market` console script beside {sys.executable} (pip install -e .)"
    env = {**os.environ, "PYTHONHASHSEED": "0", "COLUMNS": "200"}
    return subprocess.run([script, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def summary(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))


def test_a_policy_passes_through_and_a_plain_object_is_wrapped() -> None:
    offline = OfflinePolicy(PROFILES["small"])
    assert as_policy(offline, "offline", "small") is offline
    plain = custom_agents.Plain()
    assert isinstance(plain, Decides)
    wrapped = as_policy(plain, f"{AGENTS}:build_plain", "small")
    assert isinstance(wrapped, PlainPolicy) and wrapped.inner is plain
    # the Policy defaults: batching one decide after another, no lifecycle work, no summary, no model cost
    assert wrapped.decide_batch([]) == [] and wrapped.summary() == {} and wrapped.cost_usd() is None
    wrapped.close()


@pytest.mark.parametrize(("factory", "says"), [
    ("build_nothing", "returned Nothing, which has no decide(observation) method"),
    ("build_class", "returned the class Plain, not an instance of it"),
    ("build_wrong", "cannot be called as factory(tier, settings, context)"),
])
def test_what_is_no_policy_is_refused_when_the_run_is_planned(factory: str, says: str) -> None:
    with pytest.raises(BackendError) as refused:
        runner.plan(SMOKE, tiers={"small": {"backend": f"{AGENTS}:{factory}"}})
    assert str(refused.value).startswith(f"tiers.small: backend '{AGENTS}:{factory}' ")
    assert says in str(refused.value)


@pytest.mark.slow
def test_a_factory_without_decide_exits_2_naming_the_backend_and_writing_nothing(tmp_path: Path) -> None:
    out = run_cli(SMOKE, "--out", tmp_path / "run", "--backend", f"small={AGENTS}:build_nothing", "-q")
    assert out.returncode == 2, out.stderr
    assert f"backend '{AGENTS}:build_nothing'" in out.stderr and "decide(observation)" in out.stderr
    assert "internal error" not in out.stderr and not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_plain_class_runs_a_week_and_is_called_a_custom_policy(tmp_path: Path) -> None:
    out = run_cli(SMOKE, "--out", tmp_path / "run", "--backend", f"small={AGENTS}:build_plain")
    assert out.returncode == 0, out.stderr
    done = summary(tmp_path / "run")
    assert done["status"] == "complete" and done["failures"]["tiers"]["small"]["turns"] > 0
    assert done["failures"]["tiers"]["small"]["failed"] == 0
    with Ledger(tmp_path / "run") as ledger:  # it listed every item of its four traders at the reference value
        listed = [r.event.listing for r in ledger.records() if r.event.type == "item_listed"]
    assert {x.seller for x in listed} >= {"p001", "p003", "p004", "p007"}
    said = f"small = custom policy {AGENTS}:build_plain"
    assert said in " ".join(out.stdout.split())  # the terminal's provenance (rich wraps long lines)
    report = (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    assert said in report and "small ran on a custom policy" in report and f"{AGENTS}:build_plain model" not in report


def test_a_plain_class_that_raises_costs_that_trader_its_turn(tmp_path: Path) -> None:
    prepared = runner.plan(SMOKE, tiers={"small": {"backend": f"{AGENTS}:build_raising"}})
    result = runner.start(prepared, RunFolder.create(tmp_path, "x", exact=tmp_path / "run"), after_run=False)
    assert result.complete
    with Ledger(tmp_path / "run") as ledger:
        failed = [r.event for r in ledger.records() if r.event.type == "agent_failed"]
    assert failed and {(e.actor, e.tier, e.kind) for e in failed} == {("p001", "small", "policy_error")}
    assert "KeyError" in failed[0].reason and "custom policy bug for p001" in failed[0].reason


def test_the_provenance_calls_a_dotted_path_backend_a_custom_policy() -> None:
    scenario, _ = load_scenario(SMOKE, {"tiers": {"frontier": {"backend": "offline", "profile": "frontier"},
                                                  "small": {"backend": "examples.my_agent:build"}}})
    assert describe_tier(scenario, "small") == "custom policy examples.my_agent:build"
    lines = provenance_lines(scenario)
    assert "small = custom policy examples.my_agent:build" in lines[1] and "model" not in lines[1]
    assert any(line.startswith("small ran on a custom policy") for line in lines)


@pytest.mark.parametrize(("value", "tier"), [
    ("small=examples.my_agent:build", {"backend": "examples.my_agent:build"}),
    ("small=my_agent:build", {"backend": "my_agent:build"}),
    ("small=my_agent:build:some-model", {"backend": "my_agent:build", "model": "some-model"}),
    ("small=anthropic:claude-haiku-4-5", {"backend": "anthropic", "model": "claude-haiku-4-5"}),
    ("small=offline", {"backend": "offline"}),
])
def test_backend_option_tells_a_module_factory_from_a_backend_and_model(value: str, tier: dict[str, str]) -> None:
    assert backend_overrides([value]) == {"small": tier}


MY_TRADER = '''
from market.observation import Decision


class MyTrader:
    def decide(self, observation):
        return Decision(note="passing")


def build(tier, settings, context):
    return MyTrader()
'''


@pytest.mark.slow
def test_market_run_imports_a_backend_from_the_current_folder(tmp_path: Path) -> None:
    (tmp_path / "lab").mkdir()
    (tmp_path / "lab" / "trader.py").write_text(MY_TRADER, encoding="utf-8")
    (tmp_path / "my_trader.py").write_text(MY_TRADER, encoding="utf-8")
    out = console("run", SMOKE, "--out", tmp_path / "a", "--backend", "small=lab.trader:build", "-q", "--no-report",
                  cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    small = summary(tmp_path / "a")["failures"]["tiers"]["small"]
    assert small["turns"] > 0 and small["failed"] == 0
    out = console("run", SMOKE, "--out", tmp_path / "b", "--backend", "small=my_trader:build", "-q", "--no-report",
                  cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert summary(tmp_path / "b")["status"] == "complete"


@pytest.mark.slow
def test_the_worked_example_runs_as_the_readme_shows(tmp_path: Path) -> None:
    out = console("run", "scenarios/smoke.yaml", "--backend", "small=examples.my_agent:build", "--out",
                  tmp_path / "run", "--no-report", cwd=ROOT)
    assert out.returncode == 0, out.stderr
    small = summary(tmp_path / "run")["markets"][0]["tiers"]["small"]
    assert small["deals_as_seller"] > 0 and small["deals_as_buyer"] > 0
    assert summary(tmp_path / "run")["failures"]["tiers"]["small"]["failed"] == 0
    assert "small = custom policy examples.my_agent:build" in " ".join(out.stdout.split())

