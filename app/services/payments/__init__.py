"""Money that staff move: balance adjustments (four eyes) and their approval queue."""
