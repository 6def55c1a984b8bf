"""Audited, formula-safe exports of what the viewer already sees."""
