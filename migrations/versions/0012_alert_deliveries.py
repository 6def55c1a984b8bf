"""alert deliveries: critical alerts sent by e-mail and webhook; per-rule recipients; action-time alert rules

Revision ID: 0012_alert_deliveries
Revises: 0011_withdrawal_decisions

- `alert_rules.email_recipients` (addresses a critical alert of the rule is e-mailed to) and `alert_rules.webhook`
  (whether it is also posted to the deployment's webhook);
- `alert_deliveries`: one row per (alert, channel, recipient): pending → sent | failed, with its attempts, the
  next retry, the last (scrubbed) error and when it was sent. The delivery worker claims rows with
  FOR UPDATE SKIP LOCKED and a lease (`next_retry_at`), then sends outside the transaction;
- the rules raised at the moment of an action (`role_granted`, `staff_2fa_reset`, `large_adjustment_approved`) and
  the evaluator's `self_exclusion_ended`.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012_alert_deliveries"
down_revision: str | None = "0011_withdrawal_decisions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "pitboss_app"
TZ = sa.DateTime(timezone=True)
OLD_CODES = (
    "large_withdrawal", "ggr_drop", "postback_failures", "kyc_sla", "failed_logins", "blacklist_matches",
    "ingest_health", "rg_limit_hits",
)  # fmt: skip
NEW_RULES = [
    {
        "code": "role_granted",
        "name": "Staff role granted",
        "description": "A staff account was given a role it did not have (a new account counts); with admin_only=1"
        " only a granted admin role fires. Raised at the moment of the change.",
        "params": {"admin_only": 0},
        "severity": "critical",
    },
    {
        "code": "staff_2fa_reset",
        "name": "Second factor reset",
        "description": "A staff member's second factor (TOTP) was reset. Raised at the moment of the reset.",
        "params": {},
        "severity": "critical",
    },
    {
        "code": "large_adjustment_approved",
        "name": "Large adjustment approved",
        "description": "A balance adjustment above threshold_multiple × the brand's adjustment threshold was"
        " approved. Raised at the moment of the approval.",
        "params": {"threshold_multiple": 1},
        "severity": "critical",
    },
    {
        "code": "self_exclusion_ended",
        "name": "Self-exclusion ended",
        "description": "A player's self-exclusion reached the end of its term within the last lookback_days"
        " (the player may play again).",
        "params": {"lookback_days": 7},
        "severity": "critical",
    },
]
NEW_CODES = tuple(r["code"] for r in NEW_RULES)


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.add_column(
        "alert_rules",
        sa.Column(
            "email_recipients", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'::text[]"), nullable=False
        ),
    )
    op.add_column("alert_rules", sa.Column("webhook", sa.Boolean(), server_default=sa.text("true"), nullable=False))
    op.create_check_constraint(op.f("ck_alert_rules_recipients"), "alert_rules", "cardinality(email_recipients) <= 20")
    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("alert_id", sa.BigInteger(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("recipient", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_retry_at", TZ, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", TZ, nullable=True),
        sa.Column("created_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("channel IN ('email', 'webhook')", name=op.f("ck_alert_deliveries_channel")),
        sa.CheckConstraint("status IN ('pending', 'sent', 'failed')", name=op.f("ck_alert_deliveries_status")),
        sa.CheckConstraint("status <> 'sent' OR sent_at IS NOT NULL", name=op.f("ck_alert_deliveries_sent_at")),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_alert_deliveries_attempts")),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], name=op.f("fk_alert_deliveries_alert_id_alerts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_deliveries")),
        sa.UniqueConstraint("alert_id", "channel", "recipient", name=op.f("uq_alert_deliveries_alert_id")),
    )
    op.create_index("ix_alert_deliveries_due", "alert_deliveries", ["status", "next_retry_at"])
    op.execute(
        "CREATE TRIGGER alert_deliveries_touch BEFORE INSERT OR UPDATE ON alert_deliveries"
        " FOR EACH ROW EXECUTE FUNCTION pitboss_touch()"
    )
    op.execute(
        f"""
        REVOKE ALL ON alert_deliveries FROM {APP_ROLE};
        GRANT SELECT, INSERT, UPDATE ON alert_deliveries TO {APP_ROLE};
        GRANT USAGE, SELECT ON SEQUENCE alert_deliveries_id_seq TO {APP_ROLE};
        GRANT SELECT, INSERT, UPDATE ON alert_rules, alerts TO {APP_ROLE};
        """
    )
    op.drop_constraint(op.f("ck_alert_rules_code"), "alert_rules", type_="check")
    op.create_check_constraint(op.f("ck_alert_rules_code"), "alert_rules", _in("code", (*OLD_CODES, *NEW_CODES)))
    rules = sa.table(
        "alert_rules",
        sa.column("code", sa.String),
        sa.column("name", sa.Text),
        sa.column("description", sa.Text),
        sa.column("params", postgresql.JSONB),
        sa.column("severity", sa.String),
    )
    op.bulk_insert(rules, NEW_RULES)


def downgrade() -> None:
    codes = ", ".join(repr(c) for c in NEW_CODES)
    op.execute("DROP TRIGGER IF EXISTS alert_deliveries_touch ON alert_deliveries")
    op.drop_index("ix_alert_deliveries_due", table_name="alert_deliveries")
    op.drop_table("alert_deliveries")
    op.execute(f"DELETE FROM alerts WHERE rule_code IN ({codes})")
    op.execute(f"DELETE FROM alert_rules WHERE code IN ({codes})")
    op.drop_constraint(op.f("ck_alert_rules_code"), "alert_rules", type_="check")
    op.create_check_constraint(op.f("ck_alert_rules_code"), "alert_rules", _in("code", OLD_CODES))
    op.drop_constraint(op.f("ck_alert_rules_recipients"), "alert_rules", type_="check")
    op.drop_column("alert_rules", "webhook")
    op.drop_column("alert_rules", "email_recipients")
