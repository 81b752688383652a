"""The join interview in a person's DM: the interviewer's questions, then the mandate to confirm.

Each person's interview is a small JSON record in the store (``interview:<user>``): its ``stage``
("asking", "confirm", "failed", "done"), the transcript so far, the open question or the mandate.
Once they join, the transcript becomes their agent's instructions (``instructions/<pid>.interview.md``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from agents.interview import interviewed_path, write_interviewed
from agents.llm.interviewer import Interviewer, InterviewFailed
from agents.llm.interviewer import instructions as interview_instructions
from market.mandate import Mandate
from slackbot import blocks
from slackbot.courier import Courier
from slackbot.store import Store

log = logging.getLogger("slackbot.interview")
FORM_NOTE = "Type `/deal join` to join with the form instead."


class Interviews:
    """Interviews people who join (with ``interviewer``) and keeps each one's transcript for their agent."""

    def __init__(self, store: Store, courier: Courier, run_dir: Path, interviewer: Interviewer | None) -> None:
        self.store = store
        self.courier = courier
        self.run_dir = run_dir
        self.interviewer = interviewer

    @property
    def enabled(self) -> bool:
        """True when the week has an interviewer (``slack.interviewer`` or the host's): joining starts with it."""
        return self.interviewer is not None

    def _record(self, user_id: str) -> dict[str, Any] | None:
        raw = self.store.get(f"interview:{user_id}")
        return json.loads(raw) if raw else None

    def _save(self, user_id: str, state: dict[str, Any]) -> None:
        self.store.put(f"interview:{user_id}", json.dumps(state))

    def stage(self, user_id: str) -> str | None:
        """None (no interview), "asking", "confirm" (a mandate to confirm), "failed" or "done"."""
        state = self._record(user_id)
        return str(state["stage"]) if state else None

    def interviewing(self, user_id: str) -> bool:
        """True while a person is answering the interviewer's questions in their DM."""
        state = self._record(user_id)
        return bool(state and state["stage"] == "asking")

    def start(self, user_id: str) -> str:
        """Open the interview in the person's DM (its first question); what to tell them now."""
        assert self.interviewer is not None
        if self.store.person(user_id):
            return "You have already joined this week's market."
        state = self._record(user_id)
        if state and state["stage"] == "asking":
            return "Your interview is open in your DM with me: answer the last question there."
        try:
            question = self.interviewer.next_question([])
        except InterviewFailed as exc:
            log.warning("interview for %s: %s", user_id, exc)
            return "The interviewer is not available right now. " + FORM_NOTE
        self._save(user_id, {"stage": "asking", "transcript": [], "question": question})
        self.courier.dm(user_id, f"interview:{user_id}:q0:{len(self.store.keys_like(f'interview:{user_id}'))}",
                        blocks.notice(question or ""))
        return "I have sent you a few questions in a DM: your answers become your agent's instructions."

    def answer(self, user_id: str, text: str) -> None:
        """The person answered in their DM: the next question, or the mandate to confirm."""
        assert self.interviewer is not None
        state = self._record(user_id)
        if not state or state["stage"] != "asking":
            return
        transcript = [*state["transcript"], [state["question"], text.strip()[:2000]]]
        n = len(transcript)
        try:
            question = self.interviewer.next_question([tuple(t) for t in transcript])  # type: ignore[misc]
            if question:
                self._save(user_id, {"stage": "asking", "transcript": transcript, "question": question})
                self.courier.dm(user_id, f"interview:{user_id}:q{n}", blocks.notice(question))
                return
            mandate = self.interviewer.extract([tuple(t) for t in transcript])  # type: ignore[misc]
        except InterviewFailed as exc:
            log.warning("interview for %s: %s", user_id, exc)
            self._save(user_id, {"stage": "failed", "transcript": transcript})
            self.courier.dm(user_id, f"interview:{user_id}:failed", blocks.notice(
                "Sorry, I could not turn your answers into a mandate. " + FORM_NOTE))
            return
        self._save(user_id, {"stage": "confirm", "transcript": transcript,
                             "mandate": mandate.model_dump(mode="json")})
        self.courier.dm(user_id, f"interview:{user_id}:mandate", blocks.mandate(mandate))

    def form(self, user_id: str) -> Mandate | None:
        """The mandate the interview extracted, to confirm or correct in the join form."""
        state = self._record(user_id)
        if not state or state["stage"] != "confirm":
            return None
        return Mandate.model_validate(state["mandate"])

    def write_instructions(self, user_id: str, pid: str, name: str, form: Mandate) -> bool:
        """Write the agent's instructions from the person's interview (if they had one) where their
        agent reads them (``instructions/<pid>.interview.md``); True when written."""
        state = self._record(user_id)
        if not state or not state.get("transcript"):
            return False
        write_interviewed(self.run_dir, pid, interview_instructions(
            name, [tuple(t) for t in state["transcript"]], form))  # type: ignore[misc]
        return True

    def joined(self, user_id: str) -> None:
        """The person joined: their interview is done (its transcript kept)."""
        state = self._record(user_id) or {}
        self._save(user_id, {"stage": "done", "transcript": state.get("transcript", [])})

    def withdraw(self, pid: str) -> None:
        """The join was refused: the instructions written for ``pid`` go."""
        interviewed_path(self.run_dir, pid).unlink(missing_ok=True)
