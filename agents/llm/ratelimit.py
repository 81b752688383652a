"""Concurrency, rate limits and retries for model calls.

One ``asyncio.Semaphore`` bounds calls in flight across all tiers (``--concurrency``);
per model, ``aiolimiter`` leaky buckets hold requests and tokens per minute to the
scenario's ``rpm`` / ``tpm``. Retries honour a server's ``retry-after`` (capped),
otherwise back off exponentially with jitter.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from aiolimiter import AsyncLimiter

T = TypeVar("T")
MAX_RETRY_AFTER = 120.0


class Retryable(Exception):
    """A failed attempt worth repeating: ``kind`` is counted, ``retry_after`` honoured."""

    def __init__(self, kind: str, detail: str, retry_after: float | None = None) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail
        self.retry_after = retry_after


class Unreachable(Retryable):
    """An attempt that never reached the API at ``url`` (name resolution, refused, TLS, connect timeout).

    Retried like any fault; a few in a row with no answer in between stop the run (``agents.llm.agent``).
    """

    def __init__(self, url: str, detail: str) -> None:
        super().__init__("connection", detail)
        self.url = url


@dataclass
class ModelLimits:
    """Requests and tokens per minute for one model (None: unlimited)."""

    rpm: AsyncLimiter | None
    tpm: AsyncLimiter | None
    tpm_capacity: int = 0

    @classmethod
    def make(cls, rpm: int | None, tpm: int | None) -> ModelLimits:
        """Limits of ``rpm`` requests and ``tpm`` tokens per minute (None or 0: that one unlimited)."""
        return cls(
            rpm=AsyncLimiter(rpm, 60) if rpm else None,
            tpm=AsyncLimiter(tpm, 60) if tpm else None,
            tpm_capacity=tpm or 0,
        )

    @contextlib.asynccontextmanager
    async def slot(self, tokens: int) -> AsyncIterator[None]:
        """Wait for room for one request of about ``tokens`` tokens (capped at the per-minute capacity), then enter."""
        if self.rpm is not None:
            await self.rpm.acquire()
        if self.tpm is not None:
            await self.tpm.acquire(min(max(1, tokens), self.tpm_capacity))
        yield


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds a server asks us to wait (``retry-after-ms`` or ``retry-after``), if it says."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is not None:
            try:
                return min(MAX_RETRY_AFTER, max(0.0, float(value) * scale))
            except ValueError:
                continue
    return None


def retry_wait(exc: Retryable, attempt: int, initial: float, cap: float) -> float:
    """Seconds to wait after the ``attempt``-th attempt failed with ``exc``: the server's ``retry-after``, else
    exponential backoff from ``initial`` (capped at ``cap``) with jitter."""
    if exc.retry_after is not None:
        return exc.retry_after
    backoff = min(cap, initial * 2 ** (attempt - 1))
    return backoff * (0.5 + random.random() / 2)


async def with_retries(
    attempt: Callable[[], Awaitable[T]],
    *,
    max_retries: int,
    initial_wait: float,
    on_fault: Callable[[Retryable], None],
    max_wait: float = 8.0,  # the official SDKs' longest backoff
) -> T:
    """``attempt()`` until it succeeds or ``max_retries`` retries are used (then its last fault is raised); each
    fault is reported. A plain loop: a retrying object set up per call was a tenth of a call's client time."""
    number = 1
    while True:
        try:
            return await attempt()
        except Retryable as exc:
            on_fault(exc)
            if number > max_retries:
                raise
            await asyncio.sleep(retry_wait(exc, number, initial_wait, max_wait))
            number += 1
