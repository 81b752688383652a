"""The interview that writes a person's agent: a model asks, then extracts the mandate.

The interviewer model asks a few questions (what the person sells and wants, their
limits, their style and how much their agent may decide), one at a time, over the
Anthropic Messages API. When the questions are done, the whole conversation goes back
to the model with one tool it must call (``record_mandate``, a forced tool call); the
call's input is validated as the one :class:`market.mandate.Mandate` (the tool's schema is
its schema) and, if it does not validate, the model gets the error as a ``tool_result``
and one chance to repair it. The mandate (items with asks and least accepted, wants with
most paid, style, autonomy) is what the person then confirms and the exchange enforces;
the conversation becomes the agent's instructions.
Calls, tokens and dollars are counted at the model's price from the pricing table.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from agents.llm.pricing import Usage, cost_nanocents, dollars, lookup
from market.mandate import STYLES, Mandate

if TYPE_CHECKING:  # the SDK is loaded when an interviewer is made (the Slack bot runs without the llm extra)
    import anthropic

TOOL = "record_mandate"
MAX_QUESTIONS = 4
OPENING = "A new participant wants to join this week's market. Start the interview."
SYSTEM = (
    "You interview a person who is joining an online second-hand market where an AI agent will trade for "
    "them. Ask ONE short question at a time, in plain words, to learn: what they want to sell (with an asking "
    "price and the least they would accept for each item), what they want to buy (with the most they would "
    "pay), how their agent should talk (one of: " + ", ".join(STYLES) + "), and whether the agent may close "
    "deals alone, must ask them first, or they trade by hand. Never promise anything; never ask for "
    "contact details, passwords or payment details. Reply with the question only."
)
EXTRACT = ("Here is the interview. Record the person's mandate with the record_mandate tool: every amount in "
           "US cents, as integers; only what the person said.")


def mandate_tool() -> dict[str, Any]:
    """The forced tool's definition (its schema is :class:`market.mandate.Mandate`'s)."""
    schema = Mandate.model_json_schema()
    return {"name": TOOL, "description": "Record the person's mandate for their trading agent.",
            "input_schema": schema}


class InterviewFailed(Exception):
    """The model could not give a valid mandate (after one repair) or the API refused: fall back to the form."""


class Interviewer:
    """One interviewer model; thread-safe counters of calls, tokens and cost (per person and in total)."""

    def __init__(self, client: anthropic.Anthropic, model: str, *, max_questions: int = MAX_QUESTIONS,
                 max_tokens: int = 400) -> None:
        price = lookup(model)
        if price is None:
            raise ValueError(f"interviewer model {model!r} has no price in agents/llm/pricing.yaml")
        self.client, self.model, self.price = client, model, price
        self.max_questions = max_questions
        self.max_tokens = max_tokens
        self.calls = 0
        self.usage = Usage()
        self._lock = threading.Lock()

    def cost_usd(self) -> float:
        """Dollars spent so far, at the model's price."""
        return dollars(cost_nanocents(self.usage, self.price))

    def _call(self, **request: Any) -> Any:
        import anthropic

        try:
            response = self.client.messages.create(model=self.model, max_tokens=self.max_tokens, **request)
        except anthropic.APIError as exc:
            raise InterviewFailed(f"the interviewer model failed: {type(exc).__name__}") from None
        u = response.usage
        used = Usage(u.input_tokens or 0, u.output_tokens or 0, u.cache_read_input_tokens or 0,
                     u.cache_creation_input_tokens or 0)
        with self._lock:
            self.calls += 1
            self.usage = self.usage + used
        return response

    def next_question(self, transcript: Sequence[tuple[str, str]]) -> str | None:
        """The next question after ``transcript`` ((question, answer) pairs), or None when enough was asked."""
        if len(transcript) >= self.max_questions:
            return None
        messages: list[dict[str, Any]] = [{"role": "user", "content": OPENING}]
        for question, answer in transcript:
            messages.append({"role": "assistant", "content": question})
            messages.append({"role": "user", "content": answer or "(no answer)"})
        response = self._call(system=SYSTEM, messages=messages)
        text = "".join(b.text for b in response.content if b.type == "text").strip()
        if not text:
            raise InterviewFailed("the interviewer model gave no question")
        return text[:1000]

    def extract(self, transcript: Sequence[tuple[str, str]]) -> Mandate:
        """The mandate, by a forced tool call validated by pydantic; one repair; else ``InterviewFailed``."""
        text = "\n".join(f"Q: {q}\nA: {a}" for q, a in transcript)
        messages: list[dict[str, Any]] = [{"role": "user", "content": f"{EXTRACT}\n\n<interview>\n{text}\n"
                                                                     "</interview>"}]
        for attempt in range(2):
            response = self._call(system=SYSTEM, messages=messages, tools=[mandate_tool()],
                                  tool_choice={"type": "tool", "name": TOOL})
            calls = [b for b in response.content if b.type == "tool_use" and b.name == TOOL]
            if not calls:
                raise InterviewFailed("the interviewer model did not record a mandate")
            call = calls[0]
            try:
                return Mandate.model_validate(call.input)
            except ValidationError as exc:
                problems = [f"{'.'.join(map(str, e['loc'])) or 'mandate'}: {e['msg']}" for e in exc.errors()[:10]]
            if attempt == 1:
                break
            messages.append({"role": "assistant", "content": [
                {"type": "tool_use", "id": call.id, "name": call.name, "input": call.input}]})
            messages.append({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": call.id, "is_error": True,
                 "content": "Not valid: " + "; ".join(problems) + ". Call record_mandate again, corrected."}]})
        raise InterviewFailed("the interviewer model's mandate was not valid after one repair")


def instructions(name: str, transcript: Sequence[tuple[str, str]], mandate: Mandate) -> str:
    """The agent's instructions: the confirmed mandate and the interview it came from (Markdown)."""
    lines = [f"# Instructions from {name}", "", "## Mandate (confirmed)", ""]
    lines += [f"- sell {s.title}: ask {s.ask / 100:.2f}, least {s.least / 100:.2f}" for s in mandate.sells]
    lines += [f"- buy {w.title}: at most {w.max_price / 100:.2f}" for w in mandate.wants]
    lines += [f"- style: {mandate.style}", f"- autonomy: {mandate.autonomy}", "", "## Interview", ""]
    for question, answer in transcript:
        lines += [f"**Q:** {question}", "", f"**A:** {answer}", ""]
    return "\n".join(lines)


def interviewer_for(model: str, base_url: str | None = None) -> Interviewer:
    """The interviewer for a scenario's ``slack.interviewer`` model, with the key from ``ANTHROPIC_API_KEY``
    (and ``ANTHROPIC_BASE_URL``), read where the trading backends read them (``agents.llm.endpoints``)."""
    import anthropic

    from agents.llm.endpoints import ANTHROPIC_KEY, anthropic_endpoint

    endpoint = anthropic_endpoint(base_url)
    if not endpoint.key:
        raise ValueError(f"slack.interviewer needs {ANTHROPIC_KEY} in the environment")
    client = anthropic.Anthropic(api_key=endpoint.key, base_url=endpoint.base_url, max_retries=2, timeout=60)
    return Interviewer(client, model)
