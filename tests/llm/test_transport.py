"""Model calls sent from worker processes: the same run as from the policy's own loop, errors carried back."""

from __future__ import annotations

import asyncio
import os
import pickle
from pathlib import Path

import pytest

from agents.llm import transport
from agents.llm.agent import Tier
from agents.llm.anthropic_backend import AnthropicApi
from agents.llm.cassette import canonical
from agents.llm.pricing import lookup
from agents.llm.ratelimit import Retryable
from market.backends import BackendError
from market.scenario import TierSettings
from tests.llm.conftest import export, model_tiers, run_model, summary

pytestmark = pytest.mark.slow


def test_workers_record_the_same_run_as_the_loop(fake_server, tmp_path: Path) -> None:
    local = run_model(tmp_path / "local", model_tiers(fake_server("anthropic", faults={"rate_limit": 5})))
    server = fake_server("anthropic", faults={"rate_limit": 5})
    spread = run_model(tmp_path / "workers", model_tiers(server), options={"workers": 2})
    assert local.complete and spread.complete
    assert export(tmp_path / "workers") == export(tmp_path / "local")
    counted = summary(tmp_path / "workers")["llm"]["total"]
    assert counted["calls"] == summary(tmp_path / "local")["llm"]["total"]["calls"] > 0
    assert counted["faults"]["rate_limited"] == server.faults_sent["rate_limit"] > 0  # Retryable crossed over


def test_retryable_survives_the_trip_back_from_a_worker() -> None:
    fault = pickle.loads(pickle.dumps(Retryable("rate_limited", "slow down", 1.5)))
    assert (fault.kind, fault.detail, fault.retry_after, str(fault)) == (
        "rate_limited", "slow down", 1.5, "rate_limited: slow down")


def test_a_worker_that_dies_fails_its_calls_with_the_reason(fake_server) -> None:
    server = fake_server("anthropic", latency=2.0)
    os.environ.setdefault("ANTHROPIC_API_KEY", "test-key")
    settings = TierSettings(backend="anthropic", model="claude-haiku-4-5", base_url=f"http://127.0.0.1:{server.port}")
    tier = Tier("small", settings, AnthropicApi(), "claude-haiku-4-5", lookup("claude-haiku-4-5"), False)
    body = canonical({"model": "claude-haiku-4-5", "max_tokens": 10, "messages": []})

    async def call_then_kill() -> None:
        workers = transport.Workers(1)
        try:
            call = asyncio.ensure_future(workers.send(tier, body))
            await asyncio.sleep(0.5)  # the request is out, its answer 2 s away
            workers._workers[0].process.kill()
            with pytest.raises(BackendError, match="model-call worker 0 stopped"):
                await asyncio.wait_for(call, 10)
        finally:
            await workers.aclose()

    asyncio.run(call_then_kill())
