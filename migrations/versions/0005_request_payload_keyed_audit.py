"""request payload binding and the keyed audit chain

Revision ID: 0005_request_payload_keyed_audit
Revises: 0004

- `action_requests.payload_hash`: a request id is bound to a hash of what the request asked for; the same
  id with another payload is refused (rows claimed before this migration have NULL: never matched).
- `ix_balance_adjustments_requester`: the requester's running totals (four eyes against splitting).
- `audit_chain_seal`: from this migration on, audit rows are hashed with HMAC-SHA256 under a key held
  outside the database (PITBOSS_AUDIT_KEY). Rows written before it keep their plain SHA-256 hashes; this
  single row seals them: `legacy_until` (the last plain row), its hash, and an HMAC of both under the key.
  `audit verify` accepts plain hashes only up to a valid seal, so nobody without the key can move the
  boundary or rewrite the plain rows. On a database whose audit log is empty no seal is written (every
  row is keyed). The key reaches the migration from `app.migrate` (alembic config attribute `audit_key`,
  a callable returning bytes); a non-empty audit log without it refuses to migrate.
"""

import hashlib
import hmac
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "0005_request_payload_keyed_audit"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "pitboss_app"
SEAL_CONTEXT = b"pitboss-audit-seal-v1"  # the same as app.services.audit.chain.seal_mac


def _seal_mac(key: bytes, legacy_until: int, legacy_hash: str) -> str:
    message = b"|".join((SEAL_CONTEXT, str(legacy_until).encode(), legacy_hash.encode()))
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def upgrade() -> None:
    op.add_column("action_requests", sa.Column("payload_hash", sa.String(length=64), nullable=True))
    op.create_index("ix_balance_adjustments_requester", "balance_adjustments", ["requested_by", "requested_at"])
    op.create_table(
        "audit_chain_seal",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("legacy_until", sa.BigInteger(), nullable=False),
        sa.Column("legacy_hash", sa.String(length=64), nullable=False),
        sa.Column("mac", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_audit_chain_seal_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chain_seal")),
    )
    op.execute(
        """
        CREATE TRIGGER audit_chain_seal_append_only BEFORE UPDATE OR DELETE ON audit_chain_seal
            FOR EACH ROW EXECUTE FUNCTION pitboss_audit_append_only();
        CREATE TRIGGER audit_chain_seal_no_truncate BEFORE TRUNCATE ON audit_chain_seal
            FOR EACH STATEMENT EXECUTE FUNCTION pitboss_audit_append_only();
        """
    )
    conn = op.get_bind()
    conn.execute(sa.text("LOCK TABLE audit_chain_head IN EXCLUSIVE MODE"))  # no audit row lands meanwhile
    head = conn.execute(sa.text("SELECT seq, hash FROM audit_chain_head WHERE id = 1")).one_or_none()
    if head is not None and head.seq > 0:
        key_source = context.config.attributes.get("audit_key")
        if key_source is None:
            raise RuntimeError(
                "the audit log holds rows with plain SHA-256 hashes: seal them under the audit key by migrating "
                "with `python -m app migrate` and PITBOSS_AUDIT_KEY set (or audit_key in .streamlit/secrets.toml)"
            )
        key = key_source() if callable(key_source) else key_source
        conn.execute(
            sa.text("INSERT INTO audit_chain_seal (id, legacy_until, legacy_hash, mac) VALUES (1, :s, :h, :m)"),
            {"s": head.seq, "h": head.hash, "m": _seal_mac(key, head.seq, head.hash)},
        )
    op.execute(
        f"""
        REVOKE ALL ON audit_chain_seal FROM {APP_ROLE};
        GRANT SELECT ON audit_chain_seal TO {APP_ROLE};
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TRIGGER IF EXISTS audit_chain_seal_no_truncate ON audit_chain_seal;
        DROP TRIGGER IF EXISTS audit_chain_seal_append_only ON audit_chain_seal;
        """
    )
    op.execute(f"REVOKE ALL ON audit_chain_seal FROM {APP_ROLE}")
    op.drop_table("audit_chain_seal")
    op.drop_index("ix_balance_adjustments_requester", table_name="balance_adjustments")
    op.drop_column("action_requests", "payload_hash")
