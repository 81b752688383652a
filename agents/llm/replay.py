"""The ``replay`` backend: answers from a recorded cassette, with no network.

The cassette is the run folder's own (``--resume``) or the one named by
``--cassette PATH``; its ``tier`` lines say which API, model and settings the
tier was recorded with, so the same requests are rebuilt and looked up by key.
A request it does not hold stops the run with the trader and step.
"""

from __future__ import annotations

from agents.llm.agent import ModelPolicy, shared_policy
from agents.llm.apis import APIS
from market.backends import BackendContext, BackendError
from market.scenario import TierSettings


def build_policy(tier: str, settings: TierSettings, context: BackendContext) -> ModelPolicy:
    """The ``replay`` backend for ``tier``: its recorded wire, model and settings, answered by ``Replay(cassette)``."""
    del settings  # the recorded settings rebuild the recorded requests
    policy = shared_policy(context)
    recorded = policy.cassette.tiers.get(tier)
    if recorded is None:
        where = f" in {policy.source}" if policy.source else ""
        raise BackendError(
            f"tiers.{tier}: the replay backend has no recording of this tier{where}; "
            f"give a recorded run's cassette with --cassette RUN_DIR/cassette.jsonl"
        )
    api = APIS[recorded["api"]]()
    policy.add_tier(tier, TierSettings.model_validate(recorded["settings"]), api, recorded["model"], None)
    return policy
