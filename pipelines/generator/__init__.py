"""The synthetic data generator (deterministic for a seed) and live mode.

- `seed(url, scale, seed=42, progress=True, as_of=None, force=False) -> dict` (counts per table)
- `is_seeded(url) -> bool`
- `live(url, rate, seconds, seed=None) -> dict` (events produced per kind)
- `check_invariants(url) -> list[str]` (violations; empty when the data is consistent)
"""

from pipelines.generator.scales import SCALES, get_scale
from pipelines.generator.seed import AlreadySeeded, is_seeded, seed, seed_database

__all__ = ["SCALES", "AlreadySeeded", "get_scale", "is_seeded", "seed", "seed_database"]
