"""A real-model week: open-weight models served here by llama.cpp (the ``local`` backend), per tier.

Runs a scenario whose tiers are on ``backend: local`` (default: ``scenarios/local_tiers.yaml``, Gemma 3
270M as "frontier" and SmolLM2-135M-Instruct as "small"; ``tests/local/week.yaml`` is the CI week) and
prints, per tier and its model, what the model did and what came of it:

- actions by kind: the action each answer asked for (read from the recorded answers in the cassette,
  turn and repair calls; ``pass`` for an empty answer), whether or not the market accepted it;
- listings, offers (counters included), deals (as seller and as buyer), messages: from the ledger;
- refusals by code: the ``action_rejected`` events of the tier's traders (``RejectionCode``);
- failed turns by kind (``agent_failed``), malformed calls and repairs (``summary.json``'s faults);
- calls, the seconds the tier's server spent answering (queueing excluded), tokens per second
  (prompt + completion tokens over those seconds, and completion tokens alone);
- the wall time of the whole run, server start-up included (not the report: ``python -m analysis RUN_DIR``).

    python benchmarks/local_model.py [SCENARIO] [--out RUN_DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from agents.llm.local_backend import LocalApi, ServerTime
from market.ledger import Ledger
from running import runner
from running.runfolder import RunFolder

ROOT = Path(__file__).resolve().parents[1]


def asked_actions(run_dir: Path) -> tuple[dict[str, Counter[str]], dict[str, str]]:
    """(the actions the answers asked for, by tier and kind; each trader's tier), from the cassette."""
    asked: dict[str, Counter[str]] = {}
    tier_of: dict[str, str] = {}
    for line in (run_dir / "cassette.jsonl").read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        if entry.get("kind") != "call" or entry.get("purpose") not in ("turn", "repair"):
            continue
        tier_of[entry["trader"]] = entry["tier"]
        counts = asked.setdefault(entry["tier"], Counter())
        if "response" not in entry:
            counts["(no answer: " + ("failed" if "failure" in entry else "gave up") + ")"] += 1
            continue
        choice = entry["response"]["choices"][0]
        content = choice["message"].get("content") or ""
        if choice.get("finish_reason") == "length":
            counts["(cut off)"] += 1
            continue
        try:
            answer = orjson.loads(content) if content.strip() else {"tool": "pass"}
        except orjson.JSONDecodeError:
            answer = {}
        counts[str(answer.get("tool") if isinstance(answer, dict) else None) or "(not an action)"] += 1
    return asked, tier_of


def outcomes(run_dir: Path, tier_of: dict[str, str]) -> dict[str, Counter[str]]:
    """What the ledger holds per tier: listings, offers, deals, messages, refusals by code, failed turns."""
    out: dict[str, Counter[str]] = {}

    def add(trader: str, what: str) -> None:
        out.setdefault(tier_of.get(trader, "?"), Counter())[what] += 1

    with Ledger(run_dir / "ledger.sqlite") as ledger:
        for text in ledger.export_lines():
            event: dict[str, Any] = json.loads(text)["event"]
            kind = event["type"]
            if kind == "item_listed":
                add(event["listing"]["seller"], "listings")
            elif kind == "offer_made":
                offer = event["offer"]
                add(offer["proposer"], "counters" if offer.get("counter_of") else "offers")
            elif kind == "deal_closed":
                add(event["deal"]["seller"], "deals as seller")
                add(event["deal"]["buyer"], "deals as buyer")
            elif kind == "message_sent":
                add(event["message"]["sender"], "messages")
            elif kind == "action_rejected":
                add(event["actor"], f"refused: {event['code']}")
            elif kind == "agent_failed":
                out.setdefault(event["tier"], Counter())[f"failed: {event['kind']}"] += 1
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("scenario", nargs="?", type=Path, default=ROOT / "scenarios" / "local_tiers.yaml")
    parser.add_argument("--out", type=Path, help="run folder to keep (default: a temporary one)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "run"
        began = time.perf_counter()
        prepared = runner.plan(args.scenario)
        apis = {id(t.api): t.api for p in prepared.policies.values() for t in p.tiers.values()}  # type: ignore[attr-defined]
        clients = [c for a in apis.values() if isinstance(a, LocalApi) for c in a.clients.values()]
        model_of = {name: s.model or "" for name, s in prepared.scenario.tiers.items() if s.backend == "local"}
        started = time.perf_counter() - began
        result = runner.start(prepared, RunFolder.create(out.parent, "r", exact=out), after_run=False)
        wall = time.perf_counter() - began
        asked, tier_of = asked_actions(out)
        happened = outcomes(out, tier_of)
        served = {c.model: c.time for c in clients}
        llm = result.summary.llm["tiers"]
        deals = sum(m.deals for m in result.summary.markets)
        figures: dict[str, Any] = {"scenario": args.scenario.name, "complete": result.complete,
                                   "wall_seconds": round(wall, 1), "server_start_seconds": round(started, 1),
                                   "deals": deals, "tiers": {}}
        print(f"scenario {args.scenario.name}: complete={result.complete}, wall {wall:.1f} s "
              f"(servers started in {started:.1f} s), deals {deals}")
        for tier, model in sorted(model_of.items()):
            t = served.get(model, ServerTime())
            share = sum(1 for m in model_of.values() if m == model)  # tiers on one model share its server
            rate = (t.prompt_tokens + t.completion_tokens) / t.seconds if t.seconds else 0.0
            out_rate = t.completion_tokens / t.seconds if t.seconds else 0.0
            account = llm.get(tier, {})
            row = {
                "model": model, "calls": account.get("calls", 0),
                "actions_asked": dict(sorted(asked.get(tier, {}).items())),
                "ledger": dict(sorted(happened.get(tier, {}).items())), "faults": account.get("faults", {}),
                "failed_turns": account.get("failures", {}),
                "server_seconds": round(t.seconds, 1), "tokens_per_s": round(rate, 1),
                "completion_tokens_per_s": round(out_rate, 2), "server_shared_by_tiers": share,
            }
            figures["tiers"][tier] = row
            print(f"\n{tier} ({model}): {row['calls']} calls, server {t.seconds:.1f} s"
                  f"{' (shared with another tier)' if share > 1 else ''}, {rate:.0f} tokens/s "
                  f"({out_rate:.1f} completion tokens/s)")
            print("  actions asked: " + (", ".join(f"{k} {v}" for k, v in row["actions_asked"].items()) or "none"))
            print("  ledger: " + (", ".join(f"{k} {v}" for k, v in row["ledger"].items()) or "nothing"))
            print(f"  faults: {row['faults'] or 'none'}; failed turns: {row['failed_turns'] or 'none'}")
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
        if args.out:
            print(f"\nrun folder: {out}")


if __name__ == "__main__":
    main()
