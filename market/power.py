"""``python -m market.power SCENARIO --vary participants=20,40,69,140``: the study-power command line.

Study power is computed by ``analysis.power`` (it tests each week with the
analysis's own tests, which the engine never imports), so this module only hands
the command line over to it when run; importing it imports nothing.
"""

from __future__ import annotations


def cli() -> None:
    """Run ``analysis.power``'s command line as ``python -m market.power`` (the same options)."""
    from analysis.power import cli as power_cli

    power_cli()


if __name__ == "__main__":
    cli()
