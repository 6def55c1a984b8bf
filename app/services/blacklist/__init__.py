"""The blacklist: value rules, CSV upload, matching players, and the audited add/end/upload actions."""
