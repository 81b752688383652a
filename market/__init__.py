"""market: a discrete-event simulator of agent commerce.

The engine lives here; agents, analysis and the Slack bot plug into it.
"""

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """``market.batch_run`` loads the experiment machinery (polars, typer) only when asked for."""
    if name == "batch_run":
        from market.experiment import batch_run

        return batch_run
    raise AttributeError(f"module 'market' has no attribute {name!r}")


__all__ = ["__version__", "batch_run"]
