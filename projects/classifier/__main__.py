"""`python -m projects.classifier <command>`: see `common.cli`."""

from common.cli import main

main("classifier")
