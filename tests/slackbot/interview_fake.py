"""The fake Anthropic Messages API (tests/llm/fakes.py: contract-checked, real error bodies, usage counted
as the API does) taught to interview: it asks its questions in turn, then records the mandate it reads
in the answers with a forced ``record_mandate`` call. ``bad_extractions`` answers that many extractions
with a least above its ask first (a mandate the bot must send back for repair)."""

from __future__ import annotations

import re
from typing import Any

from agents.llm.interviewer import TOOL
from market.money import parse_money
from tests.llm.fakes import FakeAnthropic

QUESTIONS = (
    "What would you like to sell this week, and for how much? Tell me the least you would accept too.",
    "Is there anything you want to buy? What is the most you would pay?",
    "How should your agent talk to people: friendly, direct, formal, playful, terse or chatty?",
    "Should your agent close deals alone, ask you first, or do you want to trade by hand?",
)
SELL = re.compile(r"sell (?:my |a |an )?(.+?) for (\$[\d.]+),? (?:at least|no less than) (\$[\d.]+)", re.I)
WANT = re.compile(r"(?:buy|want) (?:a |an )?(.+?) (?:for )?(?:up to|at most) (\$[\d.]+)", re.I)


class FakeInterviewer(FakeAnthropic):
    """Interview requests are answered here; every other request as the trading fake does."""

    def __init__(self, *args: Any, bad_extractions: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bad_extractions = bad_extractions
        self.interview_calls = 0

    def handle(self, path: str, request: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        system = request.get("system")
        if not (isinstance(system, str) and "You interview a person" in system):
            return super().handle(path, request)
        refusal = self.refusal(request)
        if refusal is not None:
            return refusal
        with self.lock:
            self.interview_calls += 1
        model = request["model"]
        if any(t.get("name") == TOOL for t in request.get("tools") or []):
            mandate = self.read_mandate(request["messages"][0]["content"])
            if self.bad_extractions > 0:
                self.bad_extractions -= 1
                mandate["sells"] = [{**s, "least": s["ask"] + 100} for s in mandate["sells"]] or mandate["sells"]
            content = [{"type": "tool_use", "id": self.next_id("toolu_"), "name": TOOL, "input": mandate}]
            return self._reply(model, request, content, "tool_use")
        answered = (len(request["messages"]) - 1) // 2
        question = QUESTIONS[min(answered, len(QUESTIONS) - 1)]
        return self._reply(model, request, [{"type": "text", "text": question}], "end_turn")

    @staticmethod
    def read_mandate(text: str) -> dict[str, Any]:
        answers = [line[3:] for line in text.splitlines() if line.startswith("A: ")]
        every = " ".join(answers)
        sells = [{"title": t.strip(), "ask": parse_money(a), "least": parse_money(b)}
                 for t, a, b in SELL.findall(every)]
        wants = [{"title": t.strip(), "max_price": parse_money(m)} for t, m in WANT.findall(every)]
        style = next((s for s in ("friendly", "direct", "formal", "playful", "terse", "chatty")
                      if s in every.lower()), "friendly")
        lower = every.lower()
        autonomy = "approve" if "ask me" in lower else "manual" if "by hand" in lower else "autonomous"
        return {"sells": sells, "wants": wants, "style": style, "autonomy": autonomy}
