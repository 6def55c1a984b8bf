"""System health: pipeline runs, freshness, reconciliation, and starting an ingestion run."""
