"""``--estimate``: the bill of a scenario from the requests it would send, with no network, key or folder."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from agents.llm.estimate import CacheModel, estimate, table
from agents.llm.pricing import Usage as Tokens
from agents.llm.pricing import cost_nanocents, lookup
from tests.conftest import run_cli
from tests.llm.conftest import SMOKE, model_tiers, run_model

TIERS = {"frontier": {"backend": "anthropic", "model": "claude-opus-4-5"},
         "small": {"backend": "openai", "model": "claude-haiku-4-5"}}


def test_prompt_caching_follows_the_documented_rules() -> None:
    cache = CacheModel()
    big = {"type": "text", "text": "x" * 20_000}  # 5,000 tokens by the rule
    first = {"system": [big], "messages": [{"role": "user", "content": [
        {"type": "text", "text": "hello", "cache_control": {"type": "ephemeral"}}]}]}
    usage = cache.anthropic("m", 4096, first)
    assert usage["cache_read_input_tokens"] == 0 and usage["cache_creation_input_tokens"] > 5000
    again = cache.anthropic("m", 4096, first)
    assert again["cache_read_input_tokens"] == usage["cache_creation_input_tokens"]
    assert cache.anthropic("other-model", 4096, first)["cache_read_input_tokens"] == 0
    short = {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {}}]}]}
    assert cache.anthropic("m", 4096, short)["cache_creation_input_tokens"] == 0  # below the minimum
    openai = {"messages": [{"role": "system", "content": "y" * 8000}, {"role": "user", "content": "a"}]}
    assert cache.openai("m", openai)["prompt_tokens_details"]["cached_tokens"] == 0
    cached = cache.openai("m", openai)["prompt_tokens_details"]["cached_tokens"]
    assert cached >= 1024 and cached % 128 == 0


@pytest.mark.slow
def test_an_estimate_needs_no_key_no_network_and_writes_nothing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    figures = estimate(SMOKE, tiers=TIERS)
    assert list(tmp_path.iterdir()) == []
    assert set(figures["tiers"]) == {"frontier", "small"} and "bytes" in figures["token_rule"]
    for tier, model in (("frontier", "claude-opus-4-5"), ("small", "claude-haiku-4-5")):
        t = figures["tiers"][tier]
        assert t["calls"] > 0 and t["input_tokens"] > 0 and t["output_tokens"] > 0
        usage = Tokens(t["input_tokens"], t["output_tokens"], t["cache_read_tokens"], t["cache_write_tokens"])
        assert t["cost_nanocents"] == cost_nanocents(usage, lookup(model))
    assert figures["tiers"]["frontier"]["cache_read_tokens"] > 0  # turns after the first read the cache
    out = run_cli(SMOKE, "--estimate", "--backend", "frontier=anthropic:claude-opus-4-5", "--backend",
                  "small=openai:claude-haiku-4-5", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "claude-opus-4-5" in out.stdout and "bytes" in out.stdout and list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_constrained_tier_is_priced_with_the_compact_prompt_it_sends() -> None:
    # the same tier on the tools prompt and on the constrained wire (json_schema), and a local tier (gbnf)
    full = estimate(SMOKE, days=1, tiers=TIERS)
    compact = estimate(SMOKE, days=1, tiers={
        **TIERS, "small": {**TIERS["small"], "options": {"constrained": "json_schema"}},
        "frontier": {"backend": "local", "model": "smollm2-135m"}})

    def per_call(figures: dict, tier: str) -> float:
        t = figures["tiers"][tier]
        return (t["input_tokens"] + t["cache_read_tokens"] + t["cache_write_tokens"]) / t["calls"]

    assert full["prompts"] == {"frontier": "full rules and tool schemas", "small": "full rules and tool schemas"}
    assert compact["prompts"] == {"frontier": "compact constrained prompt (gbnf)",
                                  "small": "compact constrained prompt (json_schema)"}
    assert compact["tiers"]["small"]["calls"] > 0 and compact["tiers"]["frontier"]["calls"] > 0
    assert per_call(compact, "small") < 0.5 * per_call(full, "small")
    assert compact["tiers"]["small"]["input_tokens"] < full["tiers"]["small"]["input_tokens"]
    assert compact["tiers"]["frontier"]["cost_nanocents"] == 0  # served here: free
    console = Console(record=True, width=200)
    console.print(table(compact))
    assert "prompt priced: frontier: compact constrained prompt (gbnf), small: compact constrained prompt " \
           "(json_schema)" in " ".join(console.export_text().split())


@pytest.mark.slow
def test_the_estimate_is_within_15_percent_of_a_run_on_the_fake_api(fake_server, tmp_path: Path) -> None:
    # the fake's model is the offline policy with seed 0: the estimate's stand-in at the scenario's seed 0
    server = fake_server("anthropic")
    tiers = model_tiers(server)
    guess = estimate(SMOKE, seed=0, tiers={t: {"backend": "anthropic", "model": s["model"]} for t, s in tiers.items()})
    actual = run_model(tmp_path / "run", tiers, scenario=_seeded(tmp_path, 0))
    real = actual.summary.llm["total"]
    for key in ("calls", "input_tokens", "cache_read_tokens", "output_tokens", "cost_nanocents"):
        assert abs(guess["total"][key] - real[key]) <= 0.15 * real[key], (key, guess["total"][key], real[key])


def _seeded(folder: Path, seed: int) -> Path:
    """The smoke scenario with ``seed`` (and its catalog beside it)."""
    data = yaml.safe_load(SMOKE.read_text())
    data["seed"] = seed
    shutil.copyfile(SMOKE.parent / data.get("catalog", "catalog.csv"), folder / "catalog.csv")
    path = folder / "smoke.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


SCENARIOS = sorted((SMOKE.parent).glob("*.yaml"))
TOTAL_ROW = re.compile(r"^\s*total\s+(?P<calls>[\d,]+)\s+(?P<input>[\d.,]+[kM]?)\s+[\d.,]+[kM]?\s+[\d.,]+[kM]?\s+"
                       r"(?P<output>[\d.,]+[kM]?)\s+\$(?P<dollars>[\d,]+\.\d\d)\s*$", re.M)


@pytest.mark.slow
@pytest.mark.parametrize("api", ["anthropic", "openai"])
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[p.name for p in SCENARIOS])
def test_the_estimate_works_for_every_shipped_scenario(scenario: Path, api: str, tmp_path: Path, monkeypatch) -> None:
    # every tier on a built-in backend is put on a model (a custom backend, e.g. the injection adversary, stays);
    # the offline profile the tier declares (deal.yaml's are declared in the scenario) answers for the model
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    tiers = yaml.safe_load(scenario.read_text())["tiers"]
    backends = [f"{tier}={api}:{'claude-opus-4-5' if tier == 'frontier' else 'claude-haiku-4-5'}"
                for tier, settings in tiers.items() if ":" not in str(settings.get("backend", "offline"))]
    assert backends
    args = [a for b in backends for a in ("--backend", b)]
    out = run_cli(scenario.resolve(), "--estimate", "--days", "1", *args, cwd=tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr
    total = TOTAL_ROW.search(out.stdout)
    assert total is not None, out.stdout
    assert int(total["calls"].replace(",", "")) > 0 and total["input"] != "0" and total["output"] != "0"
    assert "offline profile" in out.stdout  # what answered for the models is said with the figures
    assert list(tmp_path.iterdir()) == []
