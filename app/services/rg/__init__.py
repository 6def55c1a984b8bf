"""Responsible gambling: limits with a cooling-off, time-outs, the platform's enforcement, the interaction log."""
