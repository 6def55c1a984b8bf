"""Support cases: assignment, status moves, the first-response SLA, append-only notes and links; player notes."""
