"""Players: account status actions, the audited player snapshot, Player 360 reads and masking."""
