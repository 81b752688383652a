"""Requests are encoded fast, but byte for byte as before: recorded cassettes keep their keys."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import example, given
from hypothesis import strategies as st

from agents.llm import prompts
from agents.llm.cassette import canonical, keyed_text
from market.events import encode_hook
from running import runner
from running.runfolder import RunFolder
from tests.llm.conftest import SMOKE

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=25,
)


def _json_canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@given(JSON)
def test_canonical_json_is_the_standard_librarys(value: object) -> None:
    assert canonical(value) == _json_canonical(value)


@given(JSON | st.integers() | st.dictionaries(st.integers(), st.booleans(), max_size=3))
@example("\ud800 a lone surrogate")
def test_compact_json_is_the_standard_librarys(value: object) -> None:
    assert prompts.compact_json(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_without_none(v) for v in value]
    return value


def test_a_request_key_hashes_its_api_and_its_body() -> None:
    request = {"model": "m", "messages": [{"role": "user", "content": "héllo \u2028 \x00"}], "max_tokens": 5}
    key, size, body = keyed_text("anthropic", request)
    blob = _json_canonical({"api": "anthropic", "request": request})
    assert body == _json_canonical(request) and size == len(blob)
    assert key == hashlib.sha256(blob).hexdigest()


def test_observation_text_is_the_json_it_always_was(tmp_path: Path) -> None:
    result = runner.start(runner.plan(SMOKE), RunFolder.create(tmp_path, "x", exact=tmp_path / "run"),
                          after_run=False)
    model = result.model
    assert model is not None
    seen = 0
    for market in model.markets:
        for trader in market.traders.values():
            obs = trader.observe(model.now)
            payload = _without_none(msgspec.to_builtins(obs, enc_hook=encode_hook))
            del payload["principal"]
            assert prompts.observation_payload(obs) == payload
            old = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
            assert f"<observation>\n{old}\n</observation>" in prompts.observation_text(obs)
            seen += 1
    assert seen > 0
