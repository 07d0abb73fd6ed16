"""simctl's Python subcommands (see tools/simctl and main.py)."""
