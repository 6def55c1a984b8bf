"""audit chain: append-only audit log, chain head, idempotency keys

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "pitboss_app"
GENESIS = "0" * 64


def upgrade() -> None:
    op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_audit_chain_head_single_row")),
        sa.CheckConstraint("seq >= 0", name=op.f("ck_audit_chain_head_seq_nonneg")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chain_head")),
    )
    op.create_table(
        "action_requests",
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("actor_name", sa.Text(), nullable=False),
        sa.Column("target_type", sa.String(length=32), nullable=True),
        sa.Column("target_id", sa.Text(), nullable=True),
        sa.Column("audit_seq", sa.BigInteger(), nullable=True),
        sa.Column("result", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["audit_seq"], ["audit_log.seq"], name=op.f("fk_action_requests_audit_seq_audit_log")),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_action_requests")),
    )
    # The head starts at the last existing row (none on a fresh database).
    op.execute(
        f"""
        INSERT INTO audit_chain_head (id, seq, hash)
        SELECT 1, coalesce(max(seq), 0),
               coalesce((SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1), '{GENESIS}')
        FROM audit_log
        """
    )
    op.execute(
        """
        CREATE FUNCTION pitboss_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
        END $$;
        CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
            FOR EACH ROW EXECUTE FUNCTION pitboss_audit_append_only();
        CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
            FOR EACH STATEMENT EXECUTE FUNCTION pitboss_audit_append_only();

        -- An insert must extend the chain exactly at its head (which the writer holds locked).
        CREATE FUNCTION pitboss_audit_extends_head() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE head_seq bigint; head_hash text;
        BEGIN
            SELECT seq, hash INTO head_seq, head_hash FROM audit_chain_head WHERE id = 1;
            IF NEW.seq IS DISTINCT FROM head_seq + 1 OR NEW.prev_hash IS DISTINCT FROM head_hash
               OR NEW.hash IS NULL OR length(NEW.hash) <> 64 THEN
                RAISE EXCEPTION 'audit row % does not extend the chain head %', NEW.seq, head_seq
                    USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER audit_log_extends_head BEFORE INSERT ON audit_log
            FOR EACH ROW EXECUTE FUNCTION pitboss_audit_extends_head();

        -- The head only moves forward, one row at a time, to a row that exists.
        CREATE FUNCTION pitboss_audit_head_forward() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.id <> OLD.id OR NEW.seq <> OLD.seq + 1
               OR NOT EXISTS (SELECT 1 FROM audit_log WHERE seq = NEW.seq AND hash = NEW.hash) THEN
                RAISE EXCEPTION 'the audit chain head only advances to the row just appended'
                    USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER audit_chain_head_forward BEFORE UPDATE ON audit_chain_head
            FOR EACH ROW EXECUTE FUNCTION pitboss_audit_head_forward();
        CREATE TRIGGER audit_chain_head_no_delete BEFORE DELETE OR TRUNCATE ON audit_chain_head
            FOR EACH STATEMENT EXECUTE FUNCTION pitboss_audit_append_only();
        """
    )
    op.execute(
        f"""
        GRANT SELECT, INSERT ON audit_log TO {APP_ROLE};
        REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM {APP_ROLE};
        REVOKE ALL ON audit_chain_head FROM {APP_ROLE};
        GRANT SELECT, UPDATE (seq, hash) ON audit_chain_head TO {APP_ROLE};
        REVOKE ALL ON action_requests FROM {APP_ROLE};
        GRANT SELECT, INSERT, UPDATE (audit_seq, result) ON action_requests TO {APP_ROLE};
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TRIGGER IF EXISTS audit_chain_head_no_delete ON audit_chain_head;
        DROP TRIGGER IF EXISTS audit_chain_head_forward ON audit_chain_head;
        DROP TRIGGER IF EXISTS audit_log_extends_head ON audit_log;
        DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log;
        DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log;
        DROP FUNCTION IF EXISTS pitboss_audit_head_forward();
        DROP FUNCTION IF EXISTS pitboss_audit_extends_head();
        DROP FUNCTION IF EXISTS pitboss_audit_append_only();
        """
    )
    op.execute(f"REVOKE ALL ON action_requests FROM {APP_ROLE}; REVOKE ALL ON audit_chain_head FROM {APP_ROLE};")
    op.drop_table("action_requests")
    op.drop_table("audit_chain_head")
