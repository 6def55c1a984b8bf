"""Sub-commands of `python -m app` (thin: parse, call, print)."""
