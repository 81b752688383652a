"""Run hooks: what runs after every batch of a run (a progress bar, a cost cap, the live page), composed.

A hook is an :data:`OnBatch`, called with the run's model and the simulated second after each batch.
Any caller composes the ones it wants with :func:`compose` and hands the result to
``runner.start``/``runner.resume`` as ``on_batch``: ``market run`` (progress, watch, ``--max-cost``),
``market sweep`` and ``market experiment`` (``--max-cost`` per run). A hook that ends the run asks the
model to stop (``model.stop``): the run stops cleanly after the current batch and can be resumed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import typer

from market.backends import distinct
from market.engine import MarketModel

OnBatch = Callable[[MarketModel, int], None]
"""A run hook: ``hook(model, at)`` after each batch (``at``: the simulated second)."""


def compose(*hooks: OnBatch | None) -> OnBatch | None:
    """One hook calling each of ``hooks`` in order (``None`` entries left out); None when there is none."""
    kept = [hook for hook in hooks if hook is not None]
    if not kept:
        return None
    if len(kept) == 1:
        return kept[0]

    def each(model: MarketModel, at: int) -> None:
        for hook in kept:
            hook(model, at)

    return each


def model_cost(model: MarketModel) -> float | None:
    """Dollars the run's model calls have cost so far (None when no tier runs on a model)."""
    costs = [c for p in distinct(model.policies) if (c := p.cost_usd()) is not None]
    return sum(costs) if costs else None


@dataclass(frozen=True)
class CostCap:
    """The ``--max-cost`` rule: stop the run cleanly (resumable) once its model calls cost ``max_usd`` dollars.

    The stop's cause is ``max_cost`` (summary.json's ``stop_cause``); a run stopped for another reason first
    keeps that reason.
    """

    max_usd: float

    def __call__(self, model: MarketModel, at: int) -> None:
        spent = model_cost(model) or 0.0
        if spent >= self.max_usd and not model.stop_requested:
            model.stop(f"--max-cost ${self.max_usd:,.2f} reached (${spent:,.2f} spent)", cause="max_cost")


MAX_COST_USD = 1_000_000
"""The largest ``--max-cost``, in US dollars."""

MaxCost = Annotated[float | None, typer.Option(
    "--max-cost", min=0, max=MAX_COST_USD,
    help="stop each run cleanly (resumable) once its model calls cost this many US dollars")]
"""The ``--max-cost`` option of every command that runs weeks (``market run``, ``sweep``, ``experiment``)."""


def cost_cap(max_usd: float | None) -> CostCap | None:
    """The cost cap for ``--max-cost`` (None: no cap); ``ValueError`` naming the option outside 0 to
    :data:`MAX_COST_USD`."""
    if max_usd is None:
        return None
    if not 0 <= max_usd <= MAX_COST_USD:  # NaN too
        raise ValueError(f"--max-cost: a number of US dollars from 0 to {MAX_COST_USD:,}, got {max_usd}")
    return CostCap(max_usd)
