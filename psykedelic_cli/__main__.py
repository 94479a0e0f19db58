"""``python -m psykedelic_cli``: the same as the ``psyk`` command."""

from psykedelic_cli.cli.app import main

main()
