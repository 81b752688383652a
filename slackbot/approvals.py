"""Approve-before-deal: an agent's committing actions wait for its principal's click.

An action commits the principal when the other side can turn it into a deal
without a further step of theirs: ``accept`` (closes at once), ``make_offer``
and ``counter`` (the other side may accept). ``ApprovalPolicy`` takes these out
of the agent's decision and hands them to the host, which DMs Approve /
Decline. Approved actions go through the live run's ``submit`` (the exchange's
rules, at the time of the click: an offer that expired or a listing that
closed meanwhile is answered with the exchange's reason). Declined ones are
dropped, and the agent reads an ``action_rejected`` event ("declined by your
principal") in its next observation's news; it may try something else later.
Settling the week declines every approval still open (never answered, or its
question never reached the person), tells the person and the admins, and
nothing asks for approval after that, also after a restart.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Protocol

import msgspec

from market.actions import Accept, Action, Counter, MakeOffer
from market.backends import AgentFailure, Policy
from market.events import ActionRejected, RejectionCode
from market.observation import Decision, Observation

HELD: tuple[type, ...] = (Accept, MakeOffer, Counter)
DECLINED = "Your principal declined this in Slack; do not repeat it unchanged."
SETTLED = "declined at settlement"
"""How an approval still open when the week was settled is recorded (its ``result`` starts so)."""


def held(action: Action) -> bool:
    """True for actions that can lead to a deal without a further step of the principal's."""
    return isinstance(action, HELD)


def target(action: Action) -> str:
    """What a held action is about: the offer it answers, or the listing it bids on."""
    if isinstance(action, MakeOffer):
        return action.listing_id
    return str(getattr(action, "offer_id", ""))


def approval_id(market: str, pid: str, action: Action) -> str:
    """The same action asked twice gets the same id (and one question)."""
    amount = getattr(action, "amount", "")
    return f"{market}:{pid}:{action.type}:{target(action)}:{amount}"


class Asker(Protocol):
    """Whoever asks a principal to approve their agent's held actions (the Slack host)."""

    def request_approval(self, market: str, pid: str, action: Action, obs: Observation) -> None:
        """Ask participant ``pid``'s principal in ``market`` to approve ``action`` (chosen on ``obs``); returns at
        once, the answer comes later (``ApprovalPolicy.declined`` on a no)."""
        ...


class ApprovalPolicy(Policy):
    """Wraps a principal's agent: committing actions are held for approval, the rest go through."""

    def __init__(self, inner: Policy, host: Asker, market: str, pid: str) -> None:
        self.inner, self.host, self.market, self.pid = inner, host, market, pid
        self._declined: list[ActionRejected] = []
        self._lock = threading.Lock()

    def declined(self, action: Action, at: int) -> None:
        """Tell the agent, at its next turn, that its principal said no (called from Slack's threads)."""
        event = ActionRejected(
            at=at, actor=self.pid, action=action, code=RejectionCode.DECLINED_BY_PRINCIPAL, reason=DECLINED
        )
        with self._lock:
            self._declined.append(event)

    def decide(self, observation: Observation) -> Decision:
        """The wrapped agent's decision, its committing actions held for approval."""
        observation = self._told(observation)
        return self._hold(observation, self.inner.decide(observation))

    def decide_batch(self, observations: Sequence[Observation]) -> list[Decision | AgentFailure]:
        """The wrapped policy decides the batch at once; committing actions are held for approval."""
        told = [self._told(o) for o in observations]
        answers = self.inner.decide_batch(told)
        return [a if isinstance(a, AgentFailure) else self._hold(o, a) for o, a in zip(told, answers, strict=True)]

    def _told(self, observation: Observation) -> Observation:
        """``observation`` with the principal's refusals since the last turn added to its news."""
        with self._lock:
            news, self._declined = self._declined, []
        if news:
            observation = msgspec.structs.replace(observation, news=(*observation.news, *news))
        return observation

    def _hold(self, observation: Observation, decision: Decision) -> Decision:
        kept: list[Action] = []
        for action in decision.actions:
            if held(action):
                self.host.request_approval(self.market, self.pid, action, observation)
            else:
                kept.append(action)
        return Decision(actions=tuple(kept), note=decision.note)
