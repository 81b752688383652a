"""The week's clock and settlement, as the admins run them: start, pause, settle, export, what waits.

The week's state (``waiting``, ``running``, ``paused``, ``settled``) is kept in the bot's store, so a
restart picks the week up where it was: running on, paused, or finishing a settlement begun.
"""

from __future__ import annotations

from running.live import LiveRun
from slackbot.approving import Approvals
from slackbot.board import Board
from slackbot.courier import Courier
from slackbot.store import Store


class Week:
    """Starts, pauses and settles the live run; answers the admins' ``export``, ``pending`` and ``resend``."""

    def __init__(self, run: LiveRun, store: Store, board: Board, courier: Courier, approvals: Approvals,
                 speed: float) -> None:
        self.run = run
        self.store = store
        self.board = board
        self.courier = courier
        self.approvals = approvals
        self.speed = speed

    def pick_up(self) -> None:
        """After the live run started: run on if it was running when the bot stopped; finish a settlement
        begun, or else ask again the questions that never reached their person."""
        if self.store.get("state") == "running":
            self.run.resume()
        if self.store.get("state") == "settled":
            self.approvals.settle()  # what was done is not redone
        else:
            self.approvals.ask_again(lost_only=True)

    def start(self) -> str:
        """Start (or resume) the clock; refused once settled."""
        if self.store.get("state") == "settled":
            return "The week is settled; it cannot start again."
        self.store.put("state", "running")
        self.run.resume()
        return f"The week is running at {self.speed:g}x."

    def pause(self) -> str:
        """Hold the clock; people's actions queue until it runs again."""
        self.run.pause()
        self.store.put("state", "paused")
        return "Paused: the clock stands still; actions queue until resume."

    def settle(self) -> str:
        """End the week: stop the clock, decline the approvals still open (their people and the admins
        are told), DM each person their settlement (once)."""
        self.store.put("state", "settled")
        self.run.finish(30)
        self.courier.poster.flush(60)
        self.store.drop_unsent("approval")  # a question still queued would ask after the week
        declined = self.approvals.settle()
        sent = 0
        for person in self.store.people():
            self.courier.dm(person.user_id, f"settle:{person.market}:{person.participant_id}",
                            self.board.settlement(person))
            sent += 1
        self.board.finish()
        if declined:
            return (f"Settled: {sent} settlement messages on their way; {len(declined)} approvals still open were "
                    "declined (their people and the admins are told).")
        return f"Settled: {sent} settlement messages on their way."

    def export(self) -> str:
        """Write the ledger as JSON lines into the run folder (``ledger.jsonl``)."""
        target = self.run.folder.path / "ledger.jsonl"
        lines = self.run.export()
        target.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        return f"Exported {len(lines)} events to {target.name} in the run folder."

    def pending(self) -> str:
        """What waits: approvals nobody answered, messages not yet delivered or refused by Slack."""
        waiting = self.approvals.waiting()
        lines = self.approvals.waiting_lines(waiting)
        unsent = self.store.outbox("pending", "failed")
        failed = [row for row in unsent if row.state == "failed"]
        lines.append(f"*{len(unsent) - len(failed)}* messages queued, *{len(failed)}* refused by Slack:")
        for row in failed[:20]:
            lines.append(f"• `{row.key}`: {row.error}")
        if failed or waiting:
            lines.append("`/deal admin resend` asks the approvals again and resends what was refused.")
        return "\n".join(lines)

    def resend(self) -> str:
        """Ask every pending approval again and queue every refused message again."""
        again = self.courier.poster.resend_failed()
        asked = self.approvals.ask_again(lost_only=False)
        return f"Asked {asked} approvals again; {again} refused messages queued again."
