from market.watch.cli import cli

cli()
