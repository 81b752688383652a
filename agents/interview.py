"""The intake interview: an interviewer asks a principal what they sell, what they
want, their limits and their style, and writes their agent's instructions.

Offline, the principal is simulated from the scenario's participant (their items,
reserve prices, wants, budget, style and quirks) and the interviewer is a fixed
script, so the same participant always gives the same instructions. The hard
limits stated here are the same numbers the exchange enforces as the mandate
(``rules.enforce_mandate``), so no instruction can loosen them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from market.domain import Participant
from market.money import format_money

QUESTIONS = (
    ("sell", "What would you like to sell this week?"),
    ("reserve", "What is the least you would accept for each of them?"),
    ("want", "What are you hoping to buy?"),
    ("max", "What is the most you would pay for each?"),
    ("budget", "How much can your agent spend in total?"),
    ("style", "How should your agent talk and negotiate for you?"),
)


@dataclass(frozen=True)
class Interview:
    """One principal's intake interview: the questions and answers, and the instructions written for their agent."""

    participant_id: str
    transcript: tuple[tuple[str, str], ...]  # (question, answer)
    instructions: str

    def markdown(self) -> str:
        """The interview as a Markdown page: the transcript, then the agent's instructions."""
        lines = [f"# Intake interview: {self.participant_id}", ""]
        for question, answer in self.transcript:
            lines += [f"**Interviewer:** {question}", "", f"**Principal:** {answer}", ""]
        lines += ["## Instructions for the agent", "", self.instructions, ""]
        return "\n".join(lines)


def simulated_answer(principal: Participant, topic: str) -> str:
    """What the simulated principal says about ``topic``, from their scenario data."""
    match topic:
        case "sell":
            return "; ".join(f"my {i.title} ({i.condition.value})" for i in principal.items) or "nothing, really"
        case "reserve":
            return "; ".join(
                f"{i.title}: no less than {format_money(principal.reserves[i.id])}"
                for i in principal.items if i.id in principal.reserves
            ) or "whatever seems fair"
        case "want":
            return "; ".join(w.title for w in principal.wants) or "nothing in particular"
        case "max":
            return "; ".join(f"{w.title}: at most {format_money(w.max_price)}" for w in principal.wants) or "-"
        case "budget":
            return f"{format_money(principal.budget)}, and not a cent more."
        case "style":
            quirks = f" Also: {', '.join(principal.quirks)}." if principal.quirks else ""
            return f"Be {principal.style}.{quirks}"
    raise ValueError(f"unknown interview topic {topic!r}")


def interview(principal: Participant) -> Interview:
    """Run the scripted interview with the simulated principal and write the instructions."""
    transcript = tuple((q, simulated_answer(principal, topic)) for topic, q in QUESTIONS)
    sells = ", ".join(i.title for i in principal.items) or "nothing"
    wants = ", ".join(f"{w.title} (at most {format_money(w.max_price)})" for w in principal.wants) or "nothing"
    quirks = f" Their quirks: {', '.join(principal.quirks)}." if principal.quirks else ""
    text = (
        f"Sell: {sells}. Get a good price, never below the reserve prices in the mandate.\n"
        f"Buy: {wants}. Pay as little as you can; one of each is enough.\n"
        f"Spend at most {format_money(principal.budget)} in total.\n"
        f"Write in a {principal.style} style.{quirks}\n"
        "Keep these limits to yourself."
    )
    return Interview(participant_id=principal.id, transcript=transcript, instructions=text)


def write_instructions(run_dir: Path, principal: Participant) -> Path:
    """Record ``principal``'s simulated interview and instructions in the run folder (once)."""
    folder = run_dir / "instructions"
    folder.mkdir(exist_ok=True)
    path = folder / f"{principal.id}.md"
    if not path.exists():
        path.write_text(interview(principal).markdown(), encoding="utf-8")
    return path


def interviewed_path(run_dir: Path, participant_id: str) -> Path:
    """Where a person's own interview (the live week's interviewer) leaves their agent's instructions.

    A file of its own name, so a run's simulated ``<id>.md`` is never mistaken for one.
    """
    return run_dir / "instructions" / f"{participant_id}.interview.md"


def write_interviewed(run_dir: Path, participant_id: str, text: str) -> Path:
    """Record the instructions a person gave their agent in their interview (replacing earlier ones)."""
    path = interviewed_path(run_dir, participant_id)
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def interviewed_instructions(run_dir: Path, participant_id: str) -> str | None:
    """The instructions from the person's own interview, or None when they were not interviewed."""
    path = interviewed_path(run_dir, participant_id)
    return path.read_text(encoding="utf-8") if path.is_file() else None
