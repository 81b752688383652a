"""A person interviewed for the live week gets their interview's instructions in their agent's system
prompt; every other trader keeps the simulated interview's, as before."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from agents.interview import interview, interviewed_path, write_interviewed
from agents.llm.agent import ModelPolicy
from agents.llm.anthropic_backend import AnthropicApi
from agents.llm.transport import Endpoint, SdkTransport, anthropic_client
from agents.offline import build_policy as offline_policy
from market.backends import BackendContext
from market.engine import MarketModel
from market.scenario import TierSettings, build_participants, load_scenario
from tests.llm.conftest import SMOKE
from tests.llm.fakes import FakeModelServer

OWN = "# Instructions from Ann\n\n- sell the lamp: ask 30.00, least 5.00\n\n**Q:** How?\n\n**A:** Be blunt, never chat."


def test_the_interview_writes_the_agent_and_the_rest_keep_the_simulated_one(
    fake_server: Callable[..., FakeModelServer], tmp_path: Path
) -> None:
    server = fake_server("anthropic")
    scenario, catalog = load_scenario(SMOKE)
    context = BackendContext(scenario=scenario, options={"retry_wait": 0})
    model = MarketModel(scenario, build_participants(scenario, catalog),
                        {t: offline_policy(t, s, context) for t, s in scenario.tiers.items()}, lambda entries: None)
    model.run(12 * 3600)
    interviewed, other = [t.observe(model.now) for t in list(model.markets[0].traders.values())[:2]]
    write_interviewed(tmp_path, interviewed.principal.id, OWN)

    policy = ModelPolicy(context)
    settings = TierSettings(backend="anthropic", model="claude-haiku-4-5", base_url=f"http://127.0.0.1:{server.port}")
    api = AnthropicApi()
    transport = SdkTransport(api, lambda: anthropic_client(Endpoint("test-key", f"http://127.0.0.1:{server.port}"),
                                                           settings))
    for tier in scenario.tiers:
        policy.add_tier(tier, settings, api, "claude-haiku-4-5", transport)
    policy.open_run(tmp_path)
    try:
        policy.decide_batch([interviewed, other])
    finally:
        policy.close()

    assert server.refused == [] and server.answered == 2
    mine = [s for s in server.systems if f"participant id {interviewed.principal.id})" in s]
    theirs = [s for s in server.systems if f"participant id {other.principal.id})" in s]
    assert len(mine) == 1 and len(theirs) == 1
    assert f"Their instructions to you:\n{OWN}\n\n" in mine[0]
    assert interview(interviewed.principal).instructions not in mine[0]
    assert f"Their instructions to you:\n{interview(other.principal).instructions}\n\n" in theirs[0]
    # the simulated record is written for the trader who used it, and only for them
    assert (tmp_path / "instructions" / f"{other.principal.id}.md").is_file()
    assert not (tmp_path / "instructions" / f"{interviewed.principal.id}.md").exists()
    assert interviewed_path(tmp_path, interviewed.principal.id).read_text() == OWN
