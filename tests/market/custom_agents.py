"""Policies of a researcher's own, as plain classes (no ``Policy`` base): factories for the custom-policy tests."""

from __future__ import annotations

from market.actions import ListItem
from market.backends import BackendContext
from market.observation import Decision, Observation
from market.scenario import TierSettings


class Plain:
    """Lists each unlisted item at its reference value; nothing else."""

    def decide(self, observation: Observation) -> Decision:
        """A listing per unlisted item."""
        return Decision(actions=tuple(ListItem(item_id=i.id, ask=max(i.value, observation.principal.reserves.get(
            i.id, 0))) for i in observation.unlisted))


class Raising(Plain):
    """A plain class with a bug for one trader."""

    def __init__(self, fail: str) -> None:
        self.fail = fail

    def decide(self, observation: Observation) -> Decision:
        """Raises for ``fail``, else as :class:`Plain`."""
        if observation.trader == self.fail:
            raise KeyError(f"custom policy bug for {observation.trader}")
        return super().decide(observation)


class Nothing:
    """No ``decide``."""

    def choose(self, observation: Observation) -> Decision:
        """Misnamed."""
        return Decision()


def build_plain(tier: str, settings: TierSettings, context: BackendContext) -> Plain:
    """A :class:`Plain` trader."""
    return Plain()


def build_raising(tier: str, settings: TierSettings, context: BackendContext) -> Raising:
    """A :class:`Raising` trader that fails for trader ``p001``."""
    return Raising("p001")


def build_nothing(tier: str, settings: TierSettings, context: BackendContext) -> Nothing:
    """An object without ``decide``."""
    return Nothing()


def build_class(tier: str, settings: TierSettings, context: BackendContext) -> type[Plain]:
    """The class, not an instance."""
    return Plain


def build_wrong() -> Plain:
    """A factory that takes none of ``(tier, settings, context)``."""
    return Plain()
