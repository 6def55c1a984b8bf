"""The declared ingestion spec of every source table: primary key, load mode and cursor.

Modes:
- `full`: small tables, re-copied whole each run through the scanner (deletes are caught for free);
- `incremental`: rows with `cursor >= lower bound` are re-read through `postgres_query` (index-friendly)
  and merged by primary key;
- `append`: append-only tables read by an id cursor (`id > high` plus not-yet-seen id gaps), merged by
  primary key.
Deletes in incremental and append tables are caught through the tombstones that triggers (migration 0004)
record, with a count check + key reconciliation as fallback and a periodic full key reconciliation as the
safety net (see `tombstones.py`). Their primary key must be one integer column (the tombstones' `row_id`).

The expected columns and types come from `app.models` (the schema the migrations create); a source that
differs is schema drift and fails the run (see `schema.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Mode = Literal["full", "incremental", "append"]


@dataclass(frozen=True)
class TableSpec:
    name: str
    pk: tuple[str, ...]
    mode: Mode
    cursor: str | None = None  # timestamp column (incremental) or id column (append)
    exclude: tuple[str, ...] = ()  # secret columns never copied into the warehouse

    def __post_init__(self) -> None:
        if self.mode != "full" and not self.cursor:
            raise ValueError(f"{self.name}: mode {self.mode} needs a cursor column")
        if self.mode == "full" and self.cursor:
            raise ValueError(f"{self.name}: mode full takes no cursor")


def _full(name: str, *pk: str, exclude: tuple[str, ...] = ()) -> TableSpec:
    return TableSpec(name, pk or ("id",), "full", exclude=exclude)


def _incremental(name: str) -> TableSpec:
    return TableSpec(name, ("id",), "incremental", cursor="updated_at")


SPECS: tuple[TableSpec, ...] = (
    # reference data and configuration: small, copied whole
    _full("operators"),
    _full("countries", "code"),
    _full("fx_rates", "rate_date", "currency"),
    _full("tax_rates"),
    _full("providers"),
    _full("games"),
    _full("affiliates"),
    _full("campaigns"),
    _full("staff_users", exclude=("password_hash",)),
    _full("tracking_configs", exclude=("secret",)),
    # mutable operational tables: `updated_at` is stamped by a trigger with the writer's transaction start
    _incremental("players"),
    _incremental("sessions"),
    _incremental("payments"),
    _incremental("bets"),
    _incremental("bonuses"),
    _incremental("kyc_cases"),
    _incremental("kyc_documents"),
    _incremental("blacklist_entries"),
    _incremental("support_tickets"),
    _incremental("balance_adjustments"),
    _incremental("postbacks"),
    # append-only: never updated or deleted (ledger by contract, audit_log enforced by grants)
    TableSpec("ledger", ("id",), "append", cursor="id"),
    TableSpec("audit_log", ("seq",), "append", cursor="seq"),
)

# Source tables deliberately not copied: live login sessions are secrets; the rest is Pitboss's own
# bookkeeping, not business data: alembic's revision, the audit chain head (audit_log itself is copied),
# request idempotency keys, the alert rules/alerts that are evaluated FROM the warehouse after ingestion
# (pages read them live through the services), and the ingestion's own tombstones (read, not copied).
EXCLUDED_TABLES: frozenset[str] = frozenset(
    {
        "staff_sessions",
        "alembic_version",
        "audit_chain_head",
        "audit_chain_seal",  # the sealed plain prefix of the audit chain (bookkeeping, like its head)
        "action_requests",
        "alert_rules",
        "alerts",
        "alert_deliveries",  # who each critical alert was sent to, and how that went
        "ingest_tombstones",
        "ingest_tombstone_horizon",
        "login_failures",  # sign-in throttling bookkeeping (typed usernames, client addresses)
        "staff_second_factors",  # staff TOTP secrets (encrypted) and recovery code hashes: secrets
        "staff_recovery_codes",
        "ticket_notes",  # support case notes and player notes: staff free text, read live by the services
        "ticket_links",
        "player_notes",
        # responsible gambling: read live by the services (Player 360, the compliance page, the alert rule)
        "rg_profiles",
        "rg_limits",
        "rg_timeouts",
        "rg_limit_hits",
        "rg_interactions",
        # withdrawal reviews (hold, first approval, decision) and per-brand payment thresholds: read live
        "withdrawal_reviews",
        "brand_payment_settings",
        # month-end closes and their restatements: the closed figures read from the warehouse, kept beside it
        "month_closes",
        "restatements",
    }
)

SPEC_BY_NAME: dict[str, TableSpec] = {s.name: s for s in SPECS}
