"""Asking people to approve their agents' committing actions, and settling what was never answered.

An agent on approval (``ApprovalPolicy``) hands its committing actions here: the person gets an
Approve / Decline DM (once per action); Approve takes the action to the desk (the exchange's rules
at the time of the click), Decline tells the agent at its next turn. Settling the week declines
every approval still open, tells the person and the admins, and nothing is asked after that.
"""

from __future__ import annotations

from market.actions import Accept, Action, parse_action
from market.backends import Policy
from market.observation import Observation
from running.live import LiveMarket
from slackbot import blocks
from slackbot.approvals import SETTLED, ApprovalPolicy, approval_id, target
from slackbot.board import Board
from slackbot.courier import Courier
from slackbot.desk import Desk, Notify
from slackbot.escape import inline, safe
from slackbot.store import Approval, OutboxRow, Person, Store

_NONE = OutboxRow("", "", None, False, None, "", state="none")


class Approvals:
    """The approvals of one week: asked, answered, asked again, settled."""

    def __init__(self, run: LiveMarket, store: Store, board: Board, courier: Courier, desk: Desk) -> None:
        self.run = run
        self.store = store
        self.board = board
        self.courier = courier
        self.desk = desk
        self._held: dict[tuple[str, str], ApprovalPolicy] = {}

    def hold(self, person: Person, agent: Policy) -> ApprovalPolicy:
        """``agent`` with ``person``'s committing actions held for their approval."""
        wrapped = ApprovalPolicy(agent, self, person.market, person.participant_id)
        self._held[(person.market, person.participant_id)] = wrapped
        return wrapped

    def request_approval(self, market: str, pid: str, action: Action, obs: Observation) -> None:
        """Hold an agent's committing action and DM its principal Approve / Decline (once per action)."""
        person = self.store.person_by_participant(market, pid)
        if person is None or self.desk.over():
            return
        approval = Approval(approval_id(market, pid, action), market, pid, target(action), "pending",
                            action.model_dump_json())
        if not self.store.add_approval(approval):
            return  # asked already, or a question about the same offer or listing is still open
        self.courier.dm(person.user_id, f"approval:{approval.id}", self.board.question(market, approval.id, action))

    def decide(self, user_id: str, approval_id: str, approve: bool, done: Notify) -> str | None:
        """The person clicked Approve or Decline; ``done`` hears the outcome. Returns a refusal or None."""
        approval = self.store.approval(approval_id)
        person = self.store.person(user_id)
        if approval is None or person is None or person.participant_id != approval.participant_id:
            return "That approval is not yours."
        if not self.store.decide_approval(approval_id, "approved" if approve else "declined"):
            if approval.result.startswith(SETTLED):
                return "The week is over: this was declined when the week was settled, and your agent did not do it."
            return "You already answered this one."
        action = _action(approval)
        if not approve:
            policy = self._held.get((approval.market, approval.participant_id))
            if policy is not None:
                policy.declined(action, self.run.now)
            done("Declined: your agent will not do that, and hears so at its next turn.")
            return None
        return self.desk.act(person, action, done, approval=approval.id)

    def settle(self) -> list[str]:
        """Decline every approval still open (never answered, or its question never reached the person),
        recorded in the approvals table with why; the person and the admins are told. The questions still
        queued are dropped first, by whoever settles (``Week.settle``, or ``Host`` on a restart). Safe to repeat:
        a restart during settlement finishes it, and the messages' keys keep them from going twice.
        Lines for the admins, one per declined approval."""
        for approval in self.store.approvals():
            if approval.state != "pending":
                continue
            keys = self.store.keys_like(f"approval:{approval.id}")
            if any(self.store.posted(k) for k in keys):
                why = "never answered"
            else:
                errors = sorted({row.error for k in keys if (row := self.store.outbox_row(k)) and row.error})
                why = "its question could not be delivered" + (f" ({', '.join(errors)})" if errors else "")
            self.store.resolve_approval(approval.id, "declined", f"{SETTLED}: {why}")  # False: answered meanwhile
        lines = []
        for approval in self.store.approvals():
            if approval.state != "declined" or not approval.result.startswith(SETTLED):
                continue
            person = self.store.person_by_participant(approval.market, approval.participant_id)
            why = approval.result.removeprefix(SETTLED).lstrip(": ")
            who = f"<@{person.user_id}>" if person else inline(approval.participant_id, 40)
            lines.append(f"• `{inline(approval.id, 120)}` for {who}: {safe(why, 200)}")
            if person is None:
                continue
            title = self.board.title(approval.market, _action(approval))
            reached = why == "never answered"
            reason = ("the week was settled before you answered" if reached else
                      "the week was settled, and the question never reached you") + ": your agent did not do it"
            self.courier.dm(person.user_id, f"settled:{approval.id}", blocks.approval_done(False, title, reason))
        if lines:
            text = "\n".join([f"Settlement declined *{len(lines)}* approvals still open:", *lines[:30]])
            if len(lines) > 30:
                text += f"\n… and {len(lines) - 30} more."
            self.courier.tell_admins(f"settled:approvals:{len(lines)}", blocks.trusted(text))  # again if more
        return lines

    def ask_again(self, lost_only: bool) -> int:
        """DM pending approval questions again: all of them, or only those never delivered (none once the
        week is over); how many were asked."""
        asked = 0
        if self.desk.over():
            return asked
        for approval in self.store.approvals():
            if approval.state != "pending":
                continue
            person = self.store.person_by_participant(approval.market, approval.participant_id)
            if person is None:
                continue
            keys = [k for k in self.store.keys_like(f"approval:{approval.id}")]
            if lost_only and any(self.store.posted(k) or (self.store.outbox_row(k) or _NONE).state == "pending"
                                 for k in keys):
                continue
            question = self.board.question(approval.market, approval.id, _action(approval))
            self.courier.dm(person.user_id, f"approval:{approval.id}:ask{len(keys) + 1}", question)
            asked += 1
        return asked

    def waiting(self) -> list[Approval]:
        """The approvals nobody answered yet, in the order they were asked."""
        return [a for a in self.store.approvals() if a.state == "pending"]

    def waiting_lines(self, waiting: list[Approval]) -> list[str]:
        """Lines for the admins: how many approvals wait (``waiting``, from :meth:`waiting`), the first 20 named."""
        lines = [f"*{len(waiting)}* approvals waiting for an answer:"]
        people = {(p.market, p.participant_id): p for p in self.store.people()}
        for a in waiting[:20]:
            person = people.get((a.market, a.participant_id))
            lines.append(f"• `{a.id}` for {'<@' + person.user_id + '>' if person else a.participant_id}")
        return lines


def _action(approval: Approval) -> Action:
    """The action an approval holds (an old row without one: accepting its offer)."""
    return parse_action(approval.action) if approval.action else Accept(offer_id=approval.target)
