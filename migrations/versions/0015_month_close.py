"""month-end close: month_closes (the figures of a closed brand-month) and restatements (later changes to them)

Revision ID: 0015_month_close
Revises: 0014_staff_second_factor

- `month_closes`: one row per brand and calendar month (UTC) closed by finance (unique: a month is closed once),
  with who closed it and when, the brand's currency, every Overview figure of the month in that currency and in
  EUR (`figures`, JSON: metric → value, label, unit, definition version), and the warehouse snapshot they were
  read from (snapshot id, ingest run id, the data's as-of time).
- `restatements`: a later source change that alters a closed figure, one row per detection, metric and currency
  (NULL for counts): the closed value, the value before this detection, the current value, the difference from
  the closed value, the reason, and the snapshot it was read from. A closed month's row never changes.
- Both are append-only whoever writes (a trigger refuses UPDATE and DELETE; TRUNCATE, used by reseeding, is left
  to the owner) and the app role may only read and insert them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0015_month_close"
down_revision: str | None = "0014_staff_second_factor"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "pitboss_app"
TZ = sa.DateTime(timezone=True)
MONEY = sa.Numeric(18, 2)
TABLES = ("month_closes", "restatements")


def upgrade() -> None:
    op.create_table(
        "month_closes",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("operator_id", sa.SmallInteger(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("figures", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("closed_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.Column("closed_by", sa.Integer(), nullable=False),
        sa.Column("closed_by_name", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("snapshot_id", sa.Text(), nullable=True),
        sa.Column("run_id", sa.Text(), nullable=True),
        sa.Column("data_as_of", TZ, nullable=True),
        sa.CheckConstraint("extract(day FROM month) = 1", name=op.f("ck_month_closes_first_day")),
        sa.ForeignKeyConstraint(["operator_id"], ["operators.id"], name=op.f("fk_month_closes_operator_id_operators")),
        sa.ForeignKeyConstraint(["closed_by"], ["staff_users.id"], name=op.f("fk_month_closes_closed_by_staff_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_month_closes")),
        sa.UniqueConstraint("operator_id", "month", name="uq_month_closes_brand_month"),
    )
    op.create_table(
        "restatements",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("month_close_id", sa.BigInteger(), nullable=False),
        sa.Column("operator_id", sa.SmallInteger(), nullable=False),
        sa.Column("detected_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("closed_value", MONEY, nullable=False),
        sa.Column("previous_value", MONEY, nullable=False),
        sa.Column("current_value", MONEY, nullable=False),
        sa.Column("difference", MONEY, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("snapshot_id", sa.Text(), nullable=True),
        sa.Column("run_id", sa.Text(), nullable=True),
        sa.CheckConstraint("difference = current_value - closed_value", name=op.f("ck_restatements_difference")),
        sa.CheckConstraint("current_value <> previous_value", name=op.f("ck_restatements_changed")),
        sa.ForeignKeyConstraint(
            ["month_close_id"], ["month_closes.id"], name=op.f("fk_restatements_month_close_id_month_closes")
        ),
        sa.ForeignKeyConstraint(["operator_id"], ["operators.id"], name=op.f("fk_restatements_operator_id_operators")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_restatements")),
    )
    op.create_index("ix_restatements_close", "restatements", ["month_close_id", "metric", "currency", "id"])
    op.execute(
        """
        CREATE FUNCTION pitboss_month_close_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '% is append-only: % refused (a closed month never changes)', TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$;
        """
    )
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}"
            " FOR EACH ROW EXECUTE FUNCTION pitboss_month_close_append_only()"
        )
    tables = ", ".join(TABLES)
    sequences = ", ".join(f"{t}_id_seq" for t in TABLES)
    op.execute(
        f"""
        REVOKE ALL ON {tables} FROM {APP_ROLE};
        GRANT SELECT, INSERT ON {tables} TO {APP_ROLE};
        GRANT USAGE, SELECT ON SEQUENCE {sequences} TO {APP_ROLE};
        """
    )


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    op.execute("DROP FUNCTION IF EXISTS pitboss_month_close_append_only()")
    op.drop_index("ix_restatements_close", table_name="restatements")
    op.drop_table("restatements")
    op.drop_table("month_closes")
