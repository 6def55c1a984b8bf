"""The audit log: the keyed hash chain (writing and verifying) and its reads."""
