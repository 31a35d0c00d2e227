"""`python -m projects.chatbot <command>`: see `common.cli` (and `chat`, this project's own command)."""

from common.cli import main

main("chatbot")
