"""`python -m projects.detector <command>`: see `common.cli`."""

from common.cli import main

main("detector")
