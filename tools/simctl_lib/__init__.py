"""simctl's subcommands for the user's own targets (see main.py)."""
