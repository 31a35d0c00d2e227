"""The six projects; each is run as `python -m projects.<name> <command>`."""
