"""The engine in instructions (the same on every machine) beside CPU time and peak memory.

CPU time on a shared machine moves with its load and its clock; the number of instructions a
run executes does not. For each case this script counts the instructions of the measured
region alone with valgrind's callgrind, and times the same region natively:

* ``deal``: a deal.yaml week (``runner.start``: engine, offline policies, exchange, ledger),
  per event;
* ``idle``: the same week with a policy that always passes (scheduling, batching,
  observations, SQLite), per trader wake;
* ``1000`` and ``10000``: one market of that many generated traders for the deal.yaml week,
  per event, and the peak memory (ru_maxrss) of the process per trader;
* ``simpy``: a bare SimPy loop scheduling as many timeouts as the deal.yaml week has events,
  per timeout; printed as a reference only (see README "Engine speed" for why it is no goal).

How the region alone is counted: a Python function cannot be named to callgrind's
``--toggle-collect`` (the interpreter runs every Python function in the same C loop), so each
case runs twice under callgrind in a fresh process, once stopping after its set-up (imports,
planning, the run folder) and once going on through the region; both leave with ``os._exit``
so neither pays for tearing its objects down. The region's instructions are the difference of
the two totals. Set-up is deterministic (``PYTHONHASHSEED=0``), so the difference is exact to
a few thousand instructions. Peak memory and CPU seconds come from a third, native run.

Callgrind runs about 50x slower than native: the deal week takes about a minute under it, the
1,000-trader week several minutes, the 10,000-trader week about an hour, so ``10000`` is counted
under callgrind only with ``--callgrind-10000`` (``perf stat -e instructions`` would be quicker
but virtual machines like this one often give no hardware counters). Without it, its
instructions per event are not given; its CPU time per event and its ratio to 1,000's are.

    python benchmarks/instructions.py [--cases deal,idle,1000,10000,simpy] [--streams 1|2] [--callgrind-10000]
                                      [--no-callgrind] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CASES = ("deal", "idle", "1000", "10000", "simpy")
DEAL_EVENTS = 13_996  # the events of the deal.yaml week at its own seed (the bare SimPy loop's count)


# --- the child: set up one case, then (unless told to stop there) run its region --------------

def _deal_plan(size: int | None, streams: int | None, tmp: Path) -> Any:
    """deal.yaml (with ``size`` generated traders in one mixed market, and the streams version
    ``streams``, when given), planned."""
    import yaml

    from running import runner

    if size is None and streams is None:
        return runner.plan(ROOT / "scenarios" / "deal.yaml")
    data = yaml.safe_load((ROOT / "scenarios" / "deal.yaml").read_text())
    if size is not None:
        data["name"] = f"scale{size}"
        data["participants"]["generate"]["count"] = size
        data["markets"] = [{"name": "B", "tiers": {"frontier": 0.5, "small": 0.5}}]
    if streams is not None:
        data["streams"] = streams
    data.pop("targets", None)
    path = tmp / "deal.yaml"
    path.write_text(yaml.safe_dump(data))
    (tmp / "catalog.csv").write_text((ROOT / "scenarios" / "catalog.csv").read_text())
    return runner.plan(path)


def _child(case: str, region: bool, streams: int | None) -> None:
    """Set up ``case``; with ``region``, run it; print one JSON line and leave without teardown."""
    tmp = Path(tempfile.mkdtemp(prefix="instr-"))
    out: dict[str, Any] = {"case": case}
    try:
        if case == "simpy":
            import simpy

            def ticker(env: simpy.Environment, n: int):  # type: ignore[no-untyped-def]
                for _ in range(n):
                    yield env.timeout(1)

            env = simpy.Environment()
            env.process(ticker(env, DEAL_EVENTS))
            if region:
                cpu = time.process_time()
                env.run()
                out.update(cpu_s=time.process_time() - cpu, units=DEAL_EVENTS)
        else:
            from market.ledger import Ledger
            from running import runner
            from running.runfolder import RunFolder

            prepared = _deal_plan(None if case in ("deal", "idle") else int(case), streams, tmp)
            if case == "idle":
                prepared.policies = {tier: _idle() for tier in prepared.policies}
            folder = RunFolder.create(tmp, "run", exact=tmp / "run")
            if region:
                cpu = time.process_time()
                result = runner.start(prepared, folder, after_run=False)
                out["cpu_s"] = time.process_time() - cpu
                with Ledger(folder.ledger) as ledger:
                    out["events"] = ledger.last_seq  # every event of the run, the opening ones included
                out["wakes"] = sum(t.steps for m in result.model.markets for t in m.traders.values())
                out["traders"] = sum(len(m.traders) for m in result.model.markets)
                out["units"] = out["wakes"] if case == "idle" else out["events"]
        out["peak_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(out), flush=True)
    os._exit(0)  # no teardown: the two callgrind runs differ by the region alone


def _idle() -> Any:
    from market.backends import Policy
    from market.observation import Decision, Observation

    class Idle(Policy):
        """A policy that always passes: what is left is the engine itself."""

        def decide(self, observation: Observation) -> Decision:
            """Pass."""
            return Decision()

    return Idle()


# --- the parent: native run, two callgrind runs, the figures -----------------------------------

def _env() -> dict[str, str]:
    """The children's environment: fixed hashing (set-up counts the same every time) and this tree first."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": path}


def _child_args(case: str, streams: int | None) -> list[str]:
    return [sys.executable, __file__, "--child", case] + ([] if streams is None else ["--streams", str(streams)])


def _native(case: str, streams: int | None) -> dict[str, Any]:
    out = subprocess.run(_child_args(case, streams), capture_output=True, text=True,
                         cwd=ROOT, env=_env())
    if out.returncode != 0:
        raise SystemExit(f"the {case} case failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _callgrind_total(case: str, region: bool, streams: int | None) -> int:
    """Instructions (Ir) of one whole child process under callgrind."""
    with tempfile.TemporaryDirectory() as tmp:
        out_file = Path(tmp) / "callgrind.out"
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}", "--dump-instr=no",
               *_child_args(case, streams)] + ([] if region else ["--setup-only"])
        run = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=_env())
        if run.returncode != 0:
            raise SystemExit(f"the {case} case failed under callgrind:\n{run.stderr[-3000:]}")
        text = out_file.read_text()
    match = re.search(r"^(?:totals|summary):\s*(\d+)", text, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no instruction total in callgrind's output for {case}")
    return int(match.group(1))


def _instructions(case: str, streams: int | None) -> int:
    """Instructions of ``case``'s region: the whole run minus the run that stops after set-up."""
    return _callgrind_total(case, True, streams) - _callgrind_total(case, False, streams)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--callgrind-10000", action="store_true", help="count the 10,000-trader week too (slow)")
    parser.add_argument("--no-callgrind", action="store_true", help="CPU time and memory only")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--streams", type=int, choices=(1, 2),
                        help="run deal.yaml with this version of the keyed streams (default: as it declares)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--setup-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, not args.setup_only, args.streams)
        return
    cases = [c for c in args.cases.split(",") if c]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        parser.error(f"--cases: unknown {', '.join(unknown)} (known: {', '.join(CASES)})")
    use_callgrind = not args.no_callgrind and shutil.which("valgrind") is not None
    if not args.no_callgrind and not use_callgrind:
        print("valgrind is not installed: CPU time and memory only (apt-get install valgrind)")
    rows: dict[str, dict[str, Any]] = {}
    for case in cases:
        row = _native(case, args.streams)
        if use_callgrind and (case != "10000" or args.callgrind_10000):
            row["instructions"] = _instructions(case, args.streams)
        rows[case] = row
        _print_row(row)
    _print_summary(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


UNIT = {"deal": "event", "idle": "wake", "1000": "event", "10000": "event", "simpy": "timeout"}
LABEL = {"deal": "deal.yaml week", "idle": "idle week (do-nothing policy)", "1000": "1,000 traders, one market",
         "10000": "10,000 traders, one market", "simpy": "bare SimPy loop (reference)"}


def _print_row(row: dict[str, Any]) -> None:
    case, units = row["case"], row["units"]
    unit = UNIT[case]
    parts = [f"{LABEL[case]:31} {units:>9,} {unit + 's':8}"]
    if "instructions" in row:
        parts.append(f"{row['instructions'] / units / 1000:8.1f}k instr/{unit}")
    else:
        parts.append(f"{'-':>8}  instr/{unit}")
    parts.append(f"{row['cpu_s'] / units * 1e6:7.1f} us CPU/{unit}")
    if "traders" in row and case in ("1000", "10000"):
        parts.append(f"peak {row['peak_kib'] / 1024:,.0f} MiB = {row['peak_kib'] / row['traders']:.1f} KiB/trader")
    print("  ".join(parts), flush=True)


def _print_summary(rows: dict[str, dict[str, Any]]) -> None:
    small, big = rows.get("1000"), rows.get("10000")
    if small and big:
        cpu = (big["cpu_s"] / big["events"]) / (small["cpu_s"] / small["events"])
        line = f"per-event cost at 10,000 traders against 1,000: x{cpu:.2f} in CPU time"
        if "instructions" in small and "instructions" in big:
            instr = (big["instructions"] / big["events"]) / (small["instructions"] / small["events"])
            line += f", x{instr:.2f} in instructions"
        print(line)
        extra = (big["peak_kib"] - small["peak_kib"]) / (big["traders"] - small["traders"])
        print(f"peak memory per trader added from 1,000 to 10,000 traders: {extra:.1f} KiB "
              f"(the process's own start-up is in the per-trader figures above)")
    deal, simpy = rows.get("deal"), rows.get("simpy")
    if deal and simpy and "instructions" in deal and "instructions" in simpy:
        instr = deal["instructions"] / deal["units"] / (simpy["instructions"] / simpy["units"])
        cpu = deal["cpu_s"] / deal["units"] / (simpy["cpu_s"] / simpy["units"])
        print(f"reference, no goal: an event costs {instr:.0f}x a bare SimPy timeout in instructions, "
              f"{cpu:.0f}x in CPU time")


if __name__ == "__main__":
    main()
