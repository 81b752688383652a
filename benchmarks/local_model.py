"""The real-model smoke week: open-weight models served here by llama.cpp (the ``local`` backend).

Runs a scenario whose tiers are on ``backend: local`` (default: tests/local/week.yaml, both
tiers on SmolLM2-135M; ``scenarios/local_tiers.yaml`` puts Gemma 3 270M and SmolLM2 side
by side) and prints, per model: calls, the seconds the server spent answering (queueing
excluded), its tokens per second (prompt + completion tokens over those seconds, and
completion tokens alone), and the share of turns whose answer needed a repair or failed.
The wall time is the whole run's, set-up (server start) included.

    python benchmarks/local_model.py [SCENARIO] [--out RUN_DIR]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

from agents.llm.local_backend import LocalApi, ServerTime
from market.ledger import Ledger
from running import runner
from running.runfolder import RunFolder

ROOT = Path(__file__).resolve().parents[1]


def turns_by_model(run_dir: Path, model_of: dict[str, str]) -> tuple[Counter[str], Counter[str], Counter[str]]:
    """(turn calls, turns that needed a repair, failed turns) per model, from the cassette and the ledger."""
    turns: Counter[str] = Counter()
    repaired: Counter[str] = Counter()
    for line in (run_dir / "cassette.jsonl").read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        if entry.get("kind") != "call" or entry.get("tier") not in model_of:
            continue
        model = model_of[entry["tier"]]
        if entry.get("purpose") == "turn":
            turns[model] += 1
        elif entry.get("purpose") == "repair":
            repaired[model] += 1
    failed: Counter[str] = Counter()
    with Ledger(run_dir / "ledger.sqlite") as ledger:
        for text in ledger.export_lines():
            event = json.loads(text)["event"]
            if event["type"] == "agent_failed" and event["tier"] in model_of:
                failed[model_of[event["tier"]]] += 1
    return turns, repaired, failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", type=Path, default=ROOT / "tests" / "local" / "week.yaml")
    parser.add_argument("--out", type=Path, help="run folder to keep (default: a temporary one)")
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
        turns, repaired, failed = turns_by_model(out, model_of)
        served = {c.model: c.time for c in clients}
        print(f"scenario {args.scenario.name}: complete={result.complete}, wall {wall:.1f} s "
              f"(servers started in {started:.1f} s), deals {sum(m['deals'] for m in result.summary['markets'])}")
        print(f"{'model':<14}{'calls':>7}{'server s':>10}{'tok/s all':>11}{'tok/s out':>11}{'turns':>7}"
              f"{'repaired':>10}{'failed':>8}{'share':>8}")
        for model in sorted(set(model_of.values())):
            t = served.get(model, ServerTime())
            n = turns[model]
            share = (repaired[model] + failed[model]) / n if n else 0.0
            rate = (t.prompt_tokens + t.completion_tokens) / t.seconds if t.seconds else 0.0
            out_rate = t.completion_tokens / t.seconds if t.seconds else 0.0
            print(f"{model:<14}{t.calls:>7}{t.seconds:>10.1f}{rate:>11.0f}{out_rate:>11.1f}{n:>7}"
                  f"{repaired[model]:>10}{failed[model]:>8}{share:>8.0%}")
        print("share: turns whose answer needed a repair call or failed (agent_failed), over turn calls; "
              "a turn can count twice if its repair also failed")
        if args.out:
            print(f"run folder: {out}")


if __name__ == "__main__":
    main()
