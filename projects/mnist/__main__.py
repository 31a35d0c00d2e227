"""`python -m projects.mnist <command>`: see `common.cli`."""

from common.cli import main

main("mnist")
