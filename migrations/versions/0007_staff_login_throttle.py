"""staff sign-in hardening: `login_failures` (throttles, per-client lockout) and session idle timeout

Revision ID: 0007_staff_login_throttle
Revises: 0006_blacklist_email_key

- `login_failures`: one row per admitted sign-in attempt that has not (yet) succeeded, keyed by the typed
  username (known or not: unknown users are throttled exactly like real ones) and the client (its network
  address). The per-client throttle, the global rate limit and the per-(username, client) lockout are counts
  over it (auth/login.py); a success deletes its username+client rows; rows older than a day are pruned.
  `staff_users.failed_logins` / `locked_until` are no longer written (a lock now binds one client, not the
  account).
- `staff_sessions.idle_minutes`: a session unused for that long ends (PITBOSS_SESSION_IDLE_MINUTES at sign-in).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_staff_login_throttle"
down_revision: str | None = "0006_blacklist_email_key"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "pitboss_app"


def upgrade() -> None:
    op.create_table(
        "login_failures",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("client_key", sa.String(length=64), nullable=False),
        sa.Column("locks_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failures")),
    )
    op.create_index("ix_login_failures_pair", "login_failures", ["client_key", "username", "at"], unique=False)
    op.create_index("ix_login_failures_at", "login_failures", ["at"], unique=False)
    op.add_column(
        "staff_sessions",
        sa.Column("idle_minutes", sa.Integer(), server_default=sa.text("30"), nullable=False),
    )
    op.create_check_constraint(op.f("ck_staff_sessions_idle_minutes"), "staff_sessions", "idle_minutes > 0")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON login_failures TO {APP_ROLE}")
    op.execute(f"GRANT USAGE, SELECT ON SEQUENCE login_failures_id_seq TO {APP_ROLE}")


def downgrade() -> None:
    op.drop_constraint(op.f("ck_staff_sessions_idle_minutes"), "staff_sessions", type_="check")
    op.drop_column("staff_sessions", "idle_minutes")
    op.drop_index("ix_login_failures_at", table_name="login_failures")
    op.drop_index("ix_login_failures_pair", table_name="login_failures")
    op.drop_table("login_failures")
