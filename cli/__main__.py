"""``python -m cli``: the ``market`` command."""

from cli import main

main()
