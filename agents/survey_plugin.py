"""The ``market.after_run`` plugin ``fairness``: model-backed principals rate their deals.

Kept apart from ``agents.llm`` so that an install without the model extras
(``pip install -e .``) never imports the model SDKs: without them no tier can
have run on a model, so there is nobody to ask.
"""

from __future__ import annotations

from running.runner import RunResult


def after_run(result: RunResult) -> None:
    """Survey a model-backed run (or sweep) before the report is written; offline runs are left alone.

    ``result`` is the finished run, with its still-open policies (the survey asks through the run's own).
    """
    try:
        from agents.llm.survey import after_run as survey_after_run
    except ImportError:  # the llm extra is not installed, so no tier ran on a model
        return
    survey_after_run(result)
