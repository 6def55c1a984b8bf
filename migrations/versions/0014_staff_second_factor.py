"""staff second factor (TOTP): factors, recovery codes, sessions pending their second step

Revision ID: 0014_staff_second_factor
Revises: 0013_chargeback_alert

- `staff_second_factors`: one row per account that has started or finished enrolling. `totp_secret` is the
  TOTP secret encrypted (Fernet) under a key held outside the database; `confirmed_at` NULL means an enrolment
  never confirmed with a valid code (the factor is off), set means the factor is on; `last_used_step` is the
  last TOTP time step accepted (a code of that step or an earlier one is refused: no replay). A separate table,
  not columns of `staff_users`: every UPDATE of `staff_users` bumps its version, which ends the user's sessions.
- `staff_recovery_codes`: one-time recovery codes, stored as a salted SHA-256 only; `used_at` once used.
- `staff_sessions.pending_step`: a session opened after the password but before its second step
  (`second_factor`: the code is still to be typed; `enrol`: the account must enrol first). Such a session is
  not live for anything else.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_staff_second_factor"
down_revision: str | None = "0013_chargeback_alert"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "pitboss_app"
TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "staff_second_factors",
        sa.Column("staff_user_id", sa.Integer(), nullable=False),
        sa.Column("totp_secret", sa.Text(), nullable=False),
        sa.Column("confirmed_at", TZ, nullable=True),
        sa.Column("last_used_step", sa.BigInteger(), nullable=True),
        sa.Column("created_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_user_id"], ["staff_users.id"], name=op.f("fk_staff_second_factors_staff_user_id_staff_users")
        ),
        sa.PrimaryKeyConstraint("staff_user_id", name=op.f("pk_staff_second_factors")),
    )
    op.create_table(
        "staff_recovery_codes",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("staff_user_id", sa.Integer(), nullable=False),
        sa.Column("salt", sa.String(length=32), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.Column("used_at", TZ, nullable=True),
        sa.ForeignKeyConstraint(
            ["staff_user_id"], ["staff_users.id"], name=op.f("fk_staff_recovery_codes_staff_user_id_staff_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_recovery_codes")),
    )
    op.create_index("ix_staff_recovery_codes_user", "staff_recovery_codes", ["staff_user_id"], unique=False)
    op.add_column("staff_sessions", sa.Column("pending_step", sa.String(length=16), nullable=True))
    op.create_check_constraint(
        op.f("ck_staff_sessions_pending_step"), "staff_sessions", "pending_step IN ('second_factor', 'enrol')"
    )
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON staff_second_factors, staff_recovery_codes TO {APP_ROLE}")
    op.execute(f"GRANT USAGE, SELECT ON SEQUENCE staff_recovery_codes_id_seq TO {APP_ROLE}")


def downgrade() -> None:
    op.drop_constraint(op.f("ck_staff_sessions_pending_step"), "staff_sessions", type_="check")
    op.drop_column("staff_sessions", "pending_step")
    op.drop_index("ix_staff_recovery_codes_user", table_name="staff_recovery_codes")
    op.drop_table("staff_recovery_codes")
    op.drop_table("staff_second_factors")
