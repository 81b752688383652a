"""Keys and URLs of the model APIs, read from the environment in this one place (by the backend factories).

The documented variables: ``ANTHROPIC_API_KEY`` and ``ANTHROPIC_BASE_URL`` for the ``anthropic`` backend (and the
Slack interviewer), ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL`` for the ``openai`` backend. A tier's own
``base_url`` (scenario or ``--backend``) comes first. What is read is passed down as an ``Endpoint``; nothing
below reads the environment (the SDK clients are given the key and URL explicitly).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from agents.llm.transport import Endpoint

ANTHROPIC_KEY, ANTHROPIC_URL = "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"
OPENAI_KEY, OPENAI_URL = "OPENAI_API_KEY", "OPENAI_BASE_URL"
# the SDKs' own defaults, used when neither the tier nor the environment names a URL
ANTHROPIC_DEFAULT_URL = "https://api.anthropic.com"
OPENAI_DEFAULT_URL = "https://api.openai.com/v1"


def anthropic_endpoint(base_url: str | None = None, environ: Mapping[str, str] = os.environ) -> Endpoint:
    """The Anthropic API's endpoint: ``base_url`` (the tier's), else ``ANTHROPIC_BASE_URL``, else the SDK's default;
    the key from ``ANTHROPIC_API_KEY`` (None when unset)."""
    url = base_url or environ.get(ANTHROPIC_URL) or ANTHROPIC_DEFAULT_URL
    return Endpoint(environ.get(ANTHROPIC_KEY) or None, url)


def openai_endpoint(base_url: str | None = None, environ: Mapping[str, str] = os.environ) -> Endpoint:
    """An OpenAI-compatible API's endpoint: ``base_url`` (the tier's), else ``OPENAI_BASE_URL``, else OpenAI's;
    the key from ``OPENAI_API_KEY`` (None when unset)."""
    url = base_url or environ.get(OPENAI_URL) or OPENAI_DEFAULT_URL
    return Endpoint(environ.get(OPENAI_KEY) or None, url)


__all__ = ["ANTHROPIC_KEY", "ANTHROPIC_URL", "OPENAI_KEY", "OPENAI_URL", "anthropic_endpoint", "openai_endpoint"]
