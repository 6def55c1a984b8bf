"""Argument types of the command line: a bad value is argparse's one-line usage error (exit 2), not a traceback
or a loop that never sleeps."""

from __future__ import annotations

import argparse
import math


def positive_number(value: str) -> float:
    """A finite number above zero (seconds, a rate): `0`, `-5`, `nan` and `inf` are refused."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number: {value!r}")
    return number


def positive_int(value: str) -> int:
    """A whole number above zero (a batch size)."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number: {value!r}")
    return number
