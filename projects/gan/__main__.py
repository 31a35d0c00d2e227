"""`python -m projects.gan <command>`: see `common.cli`."""

from common.cli import main

main("gan")
