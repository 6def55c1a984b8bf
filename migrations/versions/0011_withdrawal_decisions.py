"""payments: withdrawal reviews (hold, four eyes, version), per-brand thresholds, payment search indexes, finance role

Revision ID: 0011_withdrawal_decisions
Revises: 0010_support_cases

- role `finance` allowed in `staff_users.roles` (SPEC §5);
- `brand_payment_settings` (one row per brand): `withdrawal_threshold` (brand currency; above it a withdrawal needs
  two people's approval, default 1000) and `cdd_threshold_eur` (customer due diligence flag, default €2,000);
  existing brands get a row with the defaults, a brand without a row uses them;
- `withdrawal_reviews` (one row per reviewed withdrawal, created by its first review action): hold (who, when, why),
  first approval (who, when, why), the decision (approved / declined, who, when, why, the reversal's ledger row),
  and `version` (trigger-maintained) that the queue's forms check. The two approvals of an approved withdrawal are
  two people (a CHECK);
- indexes for payment search: (operator_id, created_at), (created_at), and the withdrawal queue (partial: pending
  withdrawals by age).

Kept beside `payments` and `operators` rather than as columns of them: the warehouse copies those tables column by
column, and the review state is staff bookkeeping read live by the services (not ingested).
The app role may read both tables and insert/update reviews (never delete them); thresholds are read-only to it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_withdrawal_decisions"
down_revision: str | None = "0010_support_cases"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "pitboss_app"
TZ = sa.DateTime(timezone=True)
OLD_ROLES = "ARRAY['admin','manager','analyst','compliance','support']::text[]"
NEW_ROLES = "ARRAY['admin','manager','analyst','compliance','support','finance']::text[]"


def _staff_fk(table: str, column: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], ["staff_users.id"], name=op.f(f"fk_{table}_{column}_staff_users"))


def upgrade() -> None:
    op.drop_constraint(op.f("ck_staff_users_roles"), "staff_users", type_="check")
    op.create_check_constraint(
        op.f("ck_staff_users_roles"), "staff_users", f"cardinality(roles) >= 1 AND roles <@ {NEW_ROLES}"
    )

    op.create_table(
        "brand_payment_settings",
        sa.Column("operator_id", sa.SmallInteger(), nullable=False),
        sa.Column("withdrawal_threshold", sa.Numeric(18, 2), server_default=sa.text("1000"), nullable=False),
        sa.Column("cdd_threshold_eur", sa.Numeric(18, 2), server_default=sa.text("2000"), nullable=False),
        sa.Column("updated_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("withdrawal_threshold >= 0", name=op.f("ck_brand_payment_settings_withdrawal_threshold")),
        sa.CheckConstraint("cdd_threshold_eur >= 0", name=op.f("ck_brand_payment_settings_cdd_threshold")),
        sa.ForeignKeyConstraint(
            ["operator_id"], ["operators.id"], name=op.f("fk_brand_payment_settings_operator_id_operators")
        ),
        sa.PrimaryKeyConstraint("operator_id", name=op.f("pk_brand_payment_settings")),
    )
    op.execute("INSERT INTO brand_payment_settings (operator_id) SELECT id FROM operators")

    op.create_table(
        "withdrawal_reviews",
        sa.Column("payment_id", sa.BigInteger(), nullable=False),
        sa.Column("operator_id", sa.SmallInteger(), nullable=False),
        sa.Column("held_at", TZ, nullable=True),
        sa.Column("held_by", sa.Integer(), nullable=True),
        sa.Column("hold_reason", sa.Text(), nullable=True),
        sa.Column("first_approved_by", sa.Integer(), nullable=True),
        sa.Column("first_approved_at", TZ, nullable=True),
        sa.Column("first_approval_reason", sa.Text(), nullable=True),
        sa.Column("decision", sa.String(length=16), nullable=True),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("decided_at", TZ, nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("ledger_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("updated_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("decision IN ('approved', 'declined')", name=op.f("ck_withdrawal_reviews_decision")),
        sa.CheckConstraint("(held_at IS NULL) = (held_by IS NULL)", name=op.f("ck_withdrawal_reviews_hold")),
        sa.CheckConstraint("(decision IS NULL) = (decided_at IS NULL)", name=op.f("ck_withdrawal_reviews_decided")),
        sa.CheckConstraint(
            "decision IS DISTINCT FROM 'approved' OR first_approved_by IS NULL OR first_approved_by <> decided_by",
            name=op.f("ck_withdrawal_reviews_two_people"),
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_withdrawal_reviews_payment_id_payments")
        ),
        sa.ForeignKeyConstraint(
            ["operator_id"], ["operators.id"], name=op.f("fk_withdrawal_reviews_operator_id_operators")
        ),
        _staff_fk("withdrawal_reviews", "held_by"),
        _staff_fk("withdrawal_reviews", "first_approved_by"),
        _staff_fk("withdrawal_reviews", "decided_by"),
        sa.ForeignKeyConstraint(["ledger_id"], ["ledger.id"], name=op.f("fk_withdrawal_reviews_ledger_id_ledger")),
        sa.PrimaryKeyConstraint("payment_id", name=op.f("pk_withdrawal_reviews")),
    )
    op.execute(
        "CREATE TRIGGER withdrawal_reviews_touch BEFORE INSERT OR UPDATE ON withdrawal_reviews"
        " FOR EACH ROW EXECUTE FUNCTION pitboss_touch_versioned()"
    )
    op.execute(
        "CREATE TRIGGER brand_payment_settings_touch BEFORE INSERT OR UPDATE ON brand_payment_settings"
        " FOR EACH ROW EXECUTE FUNCTION pitboss_touch()"
    )

    op.create_index("ix_payments_operator_created", "payments", ["operator_id", "created_at"])
    op.create_index("ix_payments_created_at", "payments", ["created_at"])
    op.create_index(
        "ix_payments_withdrawal_queue",
        "payments",
        ["created_at"],
        postgresql_where=sa.text("kind = 'withdrawal' AND status = 'pending'"),
    )

    # the default privileges give the app role everything on new tables: narrow them
    op.execute(
        f"""
        REVOKE ALL ON brand_payment_settings, withdrawal_reviews FROM {APP_ROLE};
        GRANT SELECT ON brand_payment_settings TO {APP_ROLE};
        GRANT SELECT, INSERT, UPDATE ON withdrawal_reviews TO {APP_ROLE};
        """
    )


def downgrade() -> None:
    op.drop_index("ix_payments_withdrawal_queue", table_name="payments")
    op.drop_index("ix_payments_created_at", table_name="payments")
    op.drop_index("ix_payments_operator_created", table_name="payments")
    op.execute("DROP TRIGGER IF EXISTS withdrawal_reviews_touch ON withdrawal_reviews")
    op.execute("DROP TRIGGER IF EXISTS brand_payment_settings_touch ON brand_payment_settings")
    op.drop_table("withdrawal_reviews")
    op.drop_table("brand_payment_settings")
    op.execute("UPDATE staff_users SET roles = array_remove(roles, 'finance') WHERE 'finance' = ANY(roles)")
    # a finance-only account cannot exist without the role: it keeps the least role and is disabled
    op.execute("UPDATE staff_users SET roles = ARRAY['analyst'], disabled = true WHERE cardinality(roles) = 0")
    op.drop_constraint(op.f("ck_staff_users_roles"), "staff_users", type_="check")
    op.create_check_constraint(
        op.f("ck_staff_users_roles"), "staff_users", f"cardinality(roles) >= 1 AND roles <@ {OLD_ROLES}"
    )
