"""The synthetic data generator (deterministic for a seed) and live mode.

- `seed(url, scale, seed=42, progress=True, *, rules, as_of=None, force=False) -> dict` (row counts per table);
  `seed_database` is the same function
- `is_seeded(url) -> bool`
- `live(url, rate, seconds=None, seed=None, *, rules) -> dict` (events produced per kind)
- `rules` is a `platform.PlatformRules`: the back office's rules the simulated platform honours, handed in
  by the composition root (`app.commands.platform.PLATFORM_RULES`), since `pipelines` may not import `app.services`
- `check_invariants(url) -> list[str]` (violated rules; empty when the data is consistent)

Modules: `scales` (sizes), `reference` (brands, countries, games, fx, tax), `marketing` (affiliates,
tracking configs, postbacks), `players`, `activity` (sessions, bets, bonuses, payments, ledger; the money
model is documented there), `compliance` (KYC, blacklist, tickets), `load` / `pgbinary` (COPY),
`seed` (orchestration), `live`, `invariants`.
"""

from pipelines.generator.invariants import check_invariants
from pipelines.generator.live import live
from pipelines.generator.scales import SCALES, get_scale
from pipelines.generator.seed import AlreadySeeded, is_seeded, seed, seed_database

__all__ = [
    "SCALES",
    "AlreadySeeded",
    "check_invariants",
    "get_scale",
    "is_seeded",
    "live",
    "seed",
    "seed_database",
]
