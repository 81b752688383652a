"""market: a discrete-event simulator of agent commerce.

The core lives here (money, exchange, events, engine, scenario, ledger); runs, agents, analysis, studies
and the edges are floors above it (ARCHITECTURE.md).
"""

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """``market.batch_run`` loads the experiment machinery (polars, typer) only when asked for."""
    if name == "batch_run":
        from market.commands import command

        return command("batch_run")  # studies.experiment.batch_run, through its entry point
    raise AttributeError(f"module 'market' has no attribute {name!r}")


__all__ = ["__version__", "batch_run"]
