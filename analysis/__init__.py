"""Analysis of run folders: tier outcomes, statistics, efficiency, perception, figures and the report.

Reads run folders only (ledger + scenario.yaml); never the engine's internals.
"""

from analysis.load import AnalysisError, RunData, expand_runs, load_run, load_runs

__all__ = ["AnalysisError", "RunData", "expand_runs", "load_run", "load_runs"]
