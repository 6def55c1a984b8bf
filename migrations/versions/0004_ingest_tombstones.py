"""ingest tombstones: deletes and truncates of the ingested tables recorded by triggers

Revision ID: 0004
Revises: 0003

The ingestion reads `ingest_tombstones` with the same snapshot-safe time watermark as `updated_at`
(`deleted_at` is the deleting transaction's start, `now()`), so it catches deletes without counting or
scanning whole tables (see pipelines/ingest/tombstones.py). A TRUNCATE leaves one row with a NULL `row_id`:
the ingestion reloads that table whole. `ingest_tombstone_horizon.complete_since` says from when on the
tombstones are complete (the triggers' creation, later moved forward by pruning); a warehouse whose
watermark is older falls back to counting and key reconciliation.

The app role gets no privilege on either table: only the SECURITY DEFINER trigger functions write them.
Also: an `updated_at` index on the incremental tables that lacked one (the ingest reads them by it).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "pitboss_app"
# The incrementally ingested tables (pipelines/ingest/specs.py, modes incremental and append) and their key.
TRACKED = {
    "players": "id",
    "sessions": "id",
    "payments": "id",
    "bets": "id",
    "bonuses": "id",
    "kyc_cases": "id",
    "kyc_documents": "id",
    "blacklist_entries": "id",
    "support_tickets": "id",
    "balance_adjustments": "id",
    "postbacks": "id",
    "ledger": "id",
    "audit_log": "seq",
}
MIN_KEEP = "1 hour"  # pruning never drops tombstones younger than this
# Incremental tables whose `updated_at` had no index: the ingest's `updated_at >= bound` read scanned them.
UPDATED_AT_INDEXED = (
    "kyc_cases",
    "kyc_documents",
    "blacklist_entries",
    "support_tickets",
    "balance_adjustments",
    "postbacks",
)


def upgrade() -> None:
    op.create_table(
        "ingest_tombstones",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("table_name", sa.String(length=63), nullable=False),
        sa.Column("row_id", sa.BigInteger(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingest_tombstones")),
    )
    op.create_index("ix_ingest_tombstones_deleted_at", "ingest_tombstones", ["deleted_at"], unique=False)
    for table in UPDATED_AT_INDEXED:
        op.create_index(f"ix_{table}_updated_at", table, ["updated_at"], unique=False)
    op.create_table(
        "ingest_tombstone_horizon",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("complete_since", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_ingest_tombstone_horizon_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingest_tombstone_horizon")),
    )
    op.execute(
        f"""
        CREATE FUNCTION pitboss_tombstone_rows() RETURNS trigger LANGUAGE plpgsql
            SECURITY DEFINER SET search_path = pg_catalog, public AS $$
        BEGIN
            EXECUTE format('INSERT INTO public.ingest_tombstones (table_name, row_id) '
                           'SELECT %L, o.%I FROM pitboss_deleted_rows o', TG_TABLE_NAME, TG_ARGV[0]);
            RETURN NULL;
        END $$;
        CREATE FUNCTION pitboss_tombstone_truncate() RETURNS trigger LANGUAGE plpgsql
            SECURITY DEFINER SET search_path = pg_catalog, public AS $$
        BEGIN
            INSERT INTO public.ingest_tombstones (table_name, row_id) VALUES (TG_TABLE_NAME, NULL);
            RETURN NULL;
        END $$;
        -- Drop tombstones older than `keep` (at least {MIN_KEEP}) and move the horizon forward accordingly.
        CREATE FUNCTION pitboss_prune_tombstones(keep interval) RETURNS bigint LANGUAGE plpgsql
            SECURITY DEFINER SET search_path = pg_catalog, public AS $$
        DECLARE cutoff timestamptz := now() - greatest(keep, interval '{MIN_KEEP}'); n bigint;
        BEGIN
            DELETE FROM public.ingest_tombstones WHERE deleted_at < cutoff;
            GET DIAGNOSTICS n = ROW_COUNT;
            UPDATE public.ingest_tombstone_horizon SET complete_since = greatest(complete_since, cutoff);
            RETURN n;
        END $$;
        REVOKE ALL ON FUNCTION pitboss_tombstone_rows() FROM PUBLIC;
        REVOKE ALL ON FUNCTION pitboss_tombstone_truncate() FROM PUBLIC;
        REVOKE ALL ON FUNCTION pitboss_prune_tombstones(interval) FROM PUBLIC;
        """
    )
    for table, key in TRACKED.items():
        op.execute(
            f"CREATE TRIGGER {table}_tombstone AFTER DELETE ON {table} REFERENCING OLD TABLE AS pitboss_deleted_rows"
            f" FOR EACH STATEMENT EXECUTE FUNCTION pitboss_tombstone_rows('{key}')"
        )
        op.execute(
            f"CREATE TRIGGER {table}_tombstone_truncate AFTER TRUNCATE ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION pitboss_tombstone_truncate()"
        )
    # Complete from now on: a delete that did not fire a trigger committed before its table's CREATE TRIGGER
    # got its lock, i.e. before this clock reading.
    op.execute("INSERT INTO ingest_tombstone_horizon (id, complete_since) VALUES (1, clock_timestamp())")
    op.execute(
        f"""
        REVOKE ALL ON ingest_tombstones, ingest_tombstone_horizon FROM {APP_ROLE};
        REVOKE ALL ON SEQUENCE ingest_tombstones_id_seq FROM {APP_ROLE};
        """
    )


def downgrade() -> None:
    for table in TRACKED:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_tombstone_truncate ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_tombstone ON {table}")
    op.execute(
        """
        DROP FUNCTION IF EXISTS pitboss_prune_tombstones(interval);
        DROP FUNCTION IF EXISTS pitboss_tombstone_truncate();
        DROP FUNCTION IF EXISTS pitboss_tombstone_rows();
        """
    )
    op.drop_table("ingest_tombstone_horizon")
    for table in UPDATED_AT_INDEXED:
        op.drop_index(f"ix_{table}_updated_at", table_name=table)
    op.drop_index("ix_ingest_tombstones_deleted_at", table_name="ingest_tombstones")
    op.drop_table("ingest_tombstones")
