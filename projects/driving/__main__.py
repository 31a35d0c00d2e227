"""`python -m projects.driving <command>`: see `common.cli`."""

from common.cli import main

main("driving")
