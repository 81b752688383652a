#!/usr/bin/env bash
# The recorded exports a refactor must leave byte-identical: the ledgers (python -m market.ledger) of deal.yaml (the
# reference week, on streams version 2), deal_streams1.yaml (the week as calibrated on version 1), smoke.yaml and
# injection.yaml, of a smoke day whose tiers call the fake Anthropic API (tests/llm/fakes.py), and of that day
# replayed from its cassette with no API. Usage, from the checkout's root:
#   bash benchmarks/exports.sh OUT_DIR            # then: for f in OUT_DIR/*.ledger.jsonl; do cmp $f BEFORE/${f##*/}; done
set -euo pipefail
OUT=$(realpath -m "${1:?usage: bash benchmarks/exports.sh OUT_DIR}")
mkdir -p "$OUT"
export PYTHONHASHSEED=0
for s in deal deal_streams1 smoke injection; do
  rm -rf "$OUT/$s"
  python -m market.run "scenarios/$s.yaml" --out "$OUT/$s" --quiet --no-report > "$OUT/$s.log"
  python -m market.ledger "$OUT/$s" > "$OUT/$s.ledger.jsonl"
done
rm -rf "$OUT/model" "$OUT/replay" "$OUT/model_scenario"
OUT="$OUT" python - <<'PY'
import os, subprocess, sys
from pathlib import Path
sys.path.insert(0, ".")
from benchmarks.llm_common import model_tiers, start_fake, variant
out = Path(os.environ["OUT"])
proc, url = start_fake("anthropic")
try:
    scenario = variant("smoke.yaml", out / "model_scenario", tiers=model_tiers(url), days=1)
    subprocess.run([sys.executable, "-m", "market.run", str(scenario), "--out", str(out / "model"), "--quiet",
                    "--no-report"], check=True, timeout=600)
finally:
    proc.kill()
PY
python -m market.ledger "$OUT/model" > "$OUT/model.ledger.jsonl"
python -m market.run "$OUT/model_scenario/smoke.yaml" --out "$OUT/replay" --quiet --no-report \
  --backend frontier=replay --backend small=replay --cassette "$OUT/model/cassette.jsonl" > "$OUT/replay.log"
python -m market.ledger "$OUT/replay" > "$OUT/replay.ledger.jsonl"
sha256sum "$OUT"/*.ledger.jsonl
