"""KYC: the queue, claims and audited decisions, and the automated score (pure rules)."""
