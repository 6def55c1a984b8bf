"""Alerts: rules evaluated after ingestion and at the moment of an action, their state, acknowledge/resolve."""
