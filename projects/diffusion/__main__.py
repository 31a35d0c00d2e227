"""`python -m projects.diffusion <command>`: see `common.cli`."""

from common.cli import main

main("diffusion")
