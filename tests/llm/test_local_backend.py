"""The ``local`` backend's set-up, without a server: model names, options, defaults, requests, checksums."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from agents.llm.constrained import ConstrainedApi
from agents.llm.local_backend import (
    LOCAL_DEFAULTS,
    LocalApi,
    build_policy,
    local_options,
    request_seed,
    with_local_defaults,
)
from agents.llm.local_server import LocalModelError, _check, model
from agents.llm.pricing import lookup
from market.backends import BackendContext, BackendError
from market.scenario import TierSettings, load_scenario

ROOT = Path(__file__).resolve().parents[2]


def _context() -> BackendContext:
    scenario, _ = load_scenario(ROOT / "scenarios" / "smoke.yaml")
    return BackendContext(scenario=scenario)


def test_an_unknown_local_model_is_refused_naming_the_known_ones() -> None:
    settings = TierSettings(backend="local", model="llama-70b")
    with pytest.raises(BackendError, match=r"tiers\.small\.model: unknown local model 'llama-70b'.*smollm2-135m"):
        build_policy("small", settings, _context())
    with pytest.raises(BackendError, match=r"tiers\.small\.model: name a local model"):
        build_policy("small", TierSettings(backend="local"), _context())


@pytest.mark.parametrize(("options", "field"), [
    ({"n_ctx": 10}, "n_ctx"), ({"threads": 0}, "threads"), ({"ctx": 2048}, "ctx"), ({"seed": -1}, "seed"),
])
def test_bad_options_name_the_field(options: dict, field: str) -> None:
    settings = TierSettings(backend="local", model="smollm2-135m", options=options)
    with pytest.raises(BackendError, match=rf"tiers\.small\.options\.{field}: "):
        local_options("small", settings)


def test_local_defaults_fill_only_what_the_tier_left_unset() -> None:
    scenario_set = TierSettings.model_validate({"backend": "local", "model": "smollm2-135m", "history_turns": 6})
    settings = with_local_defaults(scenario_set)
    assert settings.history_turns == 6
    assert settings.max_retries == LOCAL_DEFAULTS["max_retries"] and settings.timeout == LOCAL_DEFAULTS["timeout"]


def test_local_requests_are_constrained_requests_with_a_seed() -> None:
    settings = TierSettings(backend="local", model="smollm2-135m", options={"seed": 5})
    messages = [{"role": "user", "content": "hello"}]
    local = LocalApi().request(settings, "smollm2-135m", "system", messages)
    held = ConstrainedApi().request(settings.model_copy(update={"options": {"constrained": "gbnf"}}),
                                    "smollm2-135m", "system", messages)
    # no tools: the answer is held to one action by llama.cpp's grammar (agents.llm.constrained)
    assert local == {**held, "seed": request_seed(5, held)} and "tools" not in local
    assert LocalApi.name == "local" and issubclass(LocalApi, ConstrainedApi)
    # the seed is the request's own: the same request draws alike, the next turn and another tier seed differently
    again = LocalApi().request(settings, "smollm2-135m", "system", messages)
    later = LocalApi().request(settings, "smollm2-135m", "system", [{"role": "user", "content": "hello again"}])
    other = LocalApi().request(settings.model_copy(update={"options": {"seed": 6}}), "smollm2-135m", "system",
                               messages)
    assert again["seed"] == local["seed"] and len({local["seed"], later["seed"], other["seed"]}) == 3
    assert all(0 <= body["seed"] < 2**31 for body in (local, later, other))


def test_local_models_are_known_and_priced_at_zero() -> None:
    for name in ("smollm2-135m", "gemma3-270m"):
        assert model(name).name == name
        price = lookup(name)
        assert price is not None and price.input == price.output == 0


def test_a_model_file_whose_checksum_differs_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF" + b"\0" * 100)
    good = base64.urlsafe_b64encode(hashlib.sha256(path.read_bytes()).digest()).rstrip(b"=").decode()
    _check(path, "sha256", good)
    with pytest.raises(LocalModelError, match="does not match the package's"):
        _check(path, "sha256", "A" * 43)
