"""What an interview costs: calls, tokens and dollars per person, on the fake Messages API.

Each person answers the interviewer's questions (``agents.llm.interviewer``: four questions,
then the forced ``record_mandate`` extraction, repaired once when it does not validate) through
the real anthropic SDK against the contract-checked fake API (tests/slackbot/interview_fake.py),
which counts tokens as compact JSON bytes / 4 (tests/llm/fakes.py): the token figures are the
fake's, not a tokenizer's, so the dollars are an estimate of the order of magnitude. Dollars are
at each model's price from agents/llm/pricing.yaml. ``--repair-share`` of extractions come back
invalid first.

    python benchmarks/slack_interview.py [--people 50] [--repair-share 0.1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import anthropic  # noqa: E402

from agents.llm.interviewer import Interviewer  # noqa: E402
from agents.llm.pricing import cost_nanocents, dollars, lookup  # noqa: E402
from tests.slackbot.interview_fake import FakeInterviewer  # noqa: E402

ANSWERS = [
    "I'd like to sell my desk lamp for $18, at least $12. And sell a monitor riser for $25, no less than $15",
    "I want a kettle up to $20, and I want an office chair up to $60",
    "friendly, but do not waste words",
    "ask me before any deal closes",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=50)
    parser.add_argument("--repair-share", type=float, default=0.1)
    args = parser.parse_args()
    repairs = round(args.people * args.repair_share)
    print(f"{args.people} interviews, {repairs} with one repaired extraction; tokens as the fake counts them")
    for model in ("claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-5"):
        fake = FakeInterviewer().start()
        client = anthropic.Anthropic(api_key=fake.api_key, base_url=f"http://127.0.0.1:{fake.port}", max_retries=0)
        interviewer = Interviewer(client, model)
        started = time.perf_counter()
        for n in range(args.people):
            fake.bad_extractions = 1 if n < repairs else 0
            transcript: list[tuple[str, str]] = []
            while (question := interviewer.next_question(transcript)) is not None:
                transcript.append((question, ANSWERS[len(transcript)]))
            interviewer.extract(transcript)
        took = time.perf_counter() - started
        fake.stop()
        u, people = interviewer.usage, args.people
        price = lookup(model)
        assert price is not None and not fake.refused
        per = dollars(cost_nanocents(u, price)) / people
        print(f"{model:<18} per person: {interviewer.calls / people:.2f} calls, "
              f"{u.total_input / people:,.0f} input + {u.output / people:,.0f} output tokens, ${per:.5f} "
              f"(${per * 1000:.2f} per 1,000 people); {took / people * 1000:.0f} ms per interview on the fake")


if __name__ == "__main__":
    main()
