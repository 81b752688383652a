"""The model backends, declared once: the wire API of each backend that asks a model, by backend name.

A tier whose backend is in ``MODEL_BACKENDS`` ran on a model (or replays one from a
cassette): the fairness survey asks its principals, and a replayed tier's cassette names
its API among ``APIS``. A new model backend is added to ``APIS`` here, and nowhere else
in the model code (its ``market.backends`` entry point is in pyproject.toml).
"""

from __future__ import annotations

from agents.llm.anthropic_backend import AnthropicApi
from agents.llm.constrained import ConstrainedApi
from agents.llm.local_backend import LocalApi
from agents.llm.openai_backend import OpenAIApi
from agents.llm.wire import Api

BACKEND_APIS: tuple[type[Api], ...] = (AnthropicApi, OpenAIApi, LocalApi)  # each model backend's wire, by its name
# every wire a cassette can name: an `openai` tier with options.constrained records `openai_constrained`
APIS: dict[str, type[Api]] = {api.name: api for api in (*BACKEND_APIS, ConstrainedApi)}
REPLAY = "replay"  # the backend that answers a model tier from its recorded cassette
MODEL_BACKENDS: frozenset[str] = frozenset({*(api.name for api in BACKEND_APIS), REPLAY})

__all__ = ["APIS", "MODEL_BACKENDS", "REPLAY"]
