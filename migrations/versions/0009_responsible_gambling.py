"""responsible gambling: limits (with cooling-off), time-outs, limit hits, interactions; the rg_limit_hits alert rule

Revision ID: 0009_responsible_gambling
Revises: 0008_chargeback_fee_time

- `rg_profiles`: one row per player with RG settings; its `version` (trigger-maintained) is what RG forms check,
  bumped by every limit, time-out or cancellation.
- `rg_limits`: every requested limit value for (player, kind, period), in force from `effective_at`; a lower
  limit is in force at once, a raise or a removal (value NULL) 24 h later (pending until then, cancellable).
- `rg_timeouts`: 24 h – 6 weeks (a CHECK); the app role may only read and insert (never shortened or lifted).
- `rg_limit_hits`: deposits and bets the platform refused because of a limit (written by the platform; read-only
  for the app role).
- `rg_interactions`: the RG contact log; the app role may only read and insert (append-only).
- alert rule `rg_limit_hits` (players who hit a limit `min_hits` times within `window_days`).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009_responsible_gambling"
down_revision: str | None = "0008_chargeback_fee_time"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "pitboss_app"
TZ = sa.DateTime(timezone=True)
OLD_CODES = (
    "large_withdrawal", "ggr_drop", "postback_failures", "kyc_sla", "failed_logins", "blacklist_matches",
    "ingest_health",
)  # fmt: skip
NEW_CODE = "rg_limit_hits"
RULE = {
    "code": NEW_CODE,
    "name": "Frequent limit hits",
    "description": "A player hit a responsible-gambling limit (a refused deposit or bet) at least min_hits times"
    " within window_days; hits already covered by an earlier alert do not count again.",
    "params": {"min_hits": 3, "window_days": 7},
    "severity": "warning",
}


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _now() -> sa.TextClause:
    return sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "rg_profiles",
        sa.Column("player_id", sa.BigInteger(), nullable=False),
        sa.Column("operator_id", sa.SmallInteger(), nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("updated_at", TZ, server_default=_now(), nullable=False),
        sa.ForeignKeyConstraint(["player_id"], ["players.id"], name=op.f("fk_rg_profiles_player_id_players")),
        sa.ForeignKeyConstraint(["operator_id"], ["operators.id"], name=op.f("fk_rg_profiles_operator_id_operators")),
        sa.PrimaryKeyConstraint("player_id", name=op.f("pk_rg_profiles")),
    )
    op.create_table(
        "rg_limits",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("player_id", sa.BigInteger(), nullable=False),
        sa.Column("operator_id", sa.SmallInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("period", sa.String(length=8), nullable=False),
        sa.Column("value", sa.Numeric(18, 2), nullable=True),
        sa.Column("requested_at", TZ, server_default=_now(), nullable=False),
        sa.Column("effective_at", TZ, nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("requested_by", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("cancelled_at", TZ, nullable=True),
        sa.Column("cancelled_by", sa.Integer(), nullable=True),
        sa.Column("cancel_reason", sa.Text(), nullable=True),
        sa.Column("updated_at", TZ, server_default=_now(), nullable=False),
        sa.CheckConstraint(_in("kind", ("deposit", "loss", "wager", "session_time")), name=op.f("ck_rg_limits_kind")),
        sa.CheckConstraint(_in("period", ("day", "week", "month")), name=op.f("ck_rg_limits_period")),
        sa.CheckConstraint(_in("source", ("player", "staff")), name=op.f("ck_rg_limits_source")),
        sa.CheckConstraint("kind <> 'session_time' OR period = 'day'", name=op.f("ck_rg_limits_session_time_daily")),
        sa.CheckConstraint("value IS NULL OR value > 0", name=op.f("ck_rg_limits_value_positive")),
        sa.CheckConstraint("effective_at >= requested_at", name=op.f("ck_rg_limits_effective_after_request")),
        sa.CheckConstraint(
            "cancelled_at IS NULL OR cancelled_at < effective_at", name=op.f("ck_rg_limits_cancelled_while_pending")
        ),
        sa.ForeignKeyConstraint(["player_id"], ["players.id"], name=op.f("fk_rg_limits_player_id_players")),
        sa.ForeignKeyConstraint(["operator_id"], ["operators.id"], name=op.f("fk_rg_limits_operator_id_operators")),
        sa.ForeignKeyConstraint(
            ["requested_by"], ["staff_users.id"], name=op.f("fk_rg_limits_requested_by_staff_users")
        ),
        sa.ForeignKeyConstraint(
            ["cancelled_by"], ["staff_users.id"], name=op.f("fk_rg_limits_cancelled_by_staff_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rg_limits")),
    )
    op.create_index("ix_rg_limits_player", "rg_limits", ["player_id", "kind", "period", "effective_at"])
    op.create_index("ix_rg_limits_effective_at", "rg_limits", ["effective_at"])
    op.create_table(
        "rg_timeouts",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("player_id", sa.BigInteger(), nullable=False),
        sa.Column("operator_id", sa.SmallInteger(), nullable=False),
        sa.Column("starts_at", TZ, nullable=False),
        sa.Column("ends_at", TZ, nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("requested_by", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", TZ, server_default=_now(), nullable=False),
        sa.CheckConstraint(_in("source", ("player", "staff")), name=op.f("ck_rg_timeouts_source")),
        sa.CheckConstraint(
            "ends_at >= starts_at + interval '24 hours' AND ends_at <= starts_at + interval '42 days'",
            name=op.f("ck_rg_timeouts_length"),
        ),
        sa.ForeignKeyConstraint(["player_id"], ["players.id"], name=op.f("fk_rg_timeouts_player_id_players")),
        sa.ForeignKeyConstraint(["operator_id"], ["operators.id"], name=op.f("fk_rg_timeouts_operator_id_operators")),
        sa.ForeignKeyConstraint(
            ["requested_by"], ["staff_users.id"], name=op.f("fk_rg_timeouts_requested_by_staff_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rg_timeouts")),
    )
    op.create_index("ix_rg_timeouts_player", "rg_timeouts", ["player_id", "ends_at"])
    op.create_index("ix_rg_timeouts_ends_at", "rg_timeouts", ["ends_at"])
    op.create_table(
        "rg_limit_hits",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("player_id", sa.BigInteger(), nullable=False),
        sa.Column("operator_id", sa.SmallInteger(), nullable=False),
        sa.Column("limit_id", sa.BigInteger(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("period", sa.String(length=8), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("limit_value", sa.Numeric(18, 2), nullable=False),
        sa.Column("used", sa.Numeric(18, 2), nullable=False),
        sa.Column("attempted", sa.Numeric(18, 2), nullable=False),
        sa.Column("occurred_at", TZ, server_default=_now(), nullable=False),
        sa.CheckConstraint(
            _in("kind", ("deposit", "loss", "wager", "session_time")), name=op.f("ck_rg_limit_hits_kind")
        ),
        sa.CheckConstraint(_in("period", ("day", "week", "month")), name=op.f("ck_rg_limit_hits_period")),
        sa.CheckConstraint(_in("action", ("deposit", "bet")), name=op.f("ck_rg_limit_hits_action")),
        sa.ForeignKeyConstraint(["player_id"], ["players.id"], name=op.f("fk_rg_limit_hits_player_id_players")),
        sa.ForeignKeyConstraint(["operator_id"], ["operators.id"], name=op.f("fk_rg_limit_hits_operator_id_operators")),
        sa.ForeignKeyConstraint(["limit_id"], ["rg_limits.id"], name=op.f("fk_rg_limit_hits_limit_id_rg_limits")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rg_limit_hits")),
    )
    op.create_index("ix_rg_limit_hits_player", "rg_limit_hits", ["player_id", "occurred_at"])
    op.create_index("ix_rg_limit_hits_occurred_at", "rg_limit_hits", ["occurred_at"])
    op.create_table(
        "rg_interactions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("player_id", sa.BigInteger(), nullable=False),
        sa.Column("operator_id", sa.SmallInteger(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("staff_name", sa.Text(), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("follow_up_due", sa.Date(), nullable=True),
        sa.Column("occurred_at", TZ, server_default=_now(), nullable=False),
        sa.CheckConstraint(
            _in("channel", ("phone", "email", "chat", "in_app")), name=op.f("ck_rg_interactions_channel")
        ),
        sa.CheckConstraint(
            _in(
                "outcome",
                (
                    "advice_given",
                    "limit_agreed",
                    "timeout_agreed",
                    "self_exclusion_agreed",
                    "referred_to_support_service",
                    "no_response",
                    "declined",
                ),
            ),  # fmt: skip
            name=op.f("ck_rg_interactions_outcome"),
        ),
        sa.CheckConstraint("length(trim(note)) > 0", name=op.f("ck_rg_interactions_note")),
        sa.ForeignKeyConstraint(["player_id"], ["players.id"], name=op.f("fk_rg_interactions_player_id_players")),
        sa.ForeignKeyConstraint(
            ["operator_id"], ["operators.id"], name=op.f("fk_rg_interactions_operator_id_operators")
        ),
        sa.ForeignKeyConstraint(["staff_id"], ["staff_users.id"], name=op.f("fk_rg_interactions_staff_id_staff_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rg_interactions")),
    )
    op.create_index("ix_rg_interactions_player", "rg_interactions", ["player_id", "occurred_at"])
    op.create_index("ix_rg_interactions_follow_up", "rg_interactions", ["follow_up_due"])

    for table, fn in (("rg_profiles", "pitboss_touch_versioned"), ("rg_limits", "pitboss_touch")):
        op.execute(
            f"CREATE TRIGGER {table}_touch BEFORE INSERT OR UPDATE ON {table} FOR EACH ROW EXECUTE FUNCTION {fn}()"
        )
    # the default privileges give the app role everything on new tables: narrow them
    op.execute(
        f"""
        REVOKE ALL ON rg_profiles, rg_limits, rg_timeouts, rg_limit_hits, rg_interactions FROM {APP_ROLE};
        GRANT SELECT, INSERT, UPDATE ON rg_profiles, rg_limits TO {APP_ROLE};
        GRANT SELECT, INSERT ON rg_timeouts, rg_interactions TO {APP_ROLE};
        GRANT SELECT ON rg_limit_hits TO {APP_ROLE};
        GRANT USAGE, SELECT ON SEQUENCE rg_limits_id_seq, rg_timeouts_id_seq, rg_interactions_id_seq TO {APP_ROLE};
        """
    )
    op.drop_constraint(op.f("ck_alert_rules_code"), "alert_rules", type_="check")
    op.create_check_constraint(op.f("ck_alert_rules_code"), "alert_rules", _in("code", (*OLD_CODES, NEW_CODE)))
    rules = sa.table(
        "alert_rules",
        sa.column("code", sa.String),
        sa.column("name", sa.Text),
        sa.column("description", sa.Text),
        sa.column("params", postgresql.JSONB),
        sa.column("severity", sa.String),
    )
    op.bulk_insert(rules, [RULE])


def downgrade() -> None:
    op.execute(f"DELETE FROM alerts WHERE rule_code = '{NEW_CODE}'")
    op.execute(f"DELETE FROM alert_rules WHERE code = '{NEW_CODE}'")
    op.drop_constraint(op.f("ck_alert_rules_code"), "alert_rules", type_="check")
    op.create_check_constraint(op.f("ck_alert_rules_code"), "alert_rules", _in("code", OLD_CODES))
    for table in ("rg_profiles", "rg_limits"):
        op.execute(f"DROP TRIGGER IF EXISTS {table}_touch ON {table}")
    op.drop_index("ix_rg_interactions_follow_up", table_name="rg_interactions")
    op.drop_index("ix_rg_interactions_player", table_name="rg_interactions")
    op.drop_table("rg_interactions")
    op.drop_index("ix_rg_limit_hits_occurred_at", table_name="rg_limit_hits")
    op.drop_index("ix_rg_limit_hits_player", table_name="rg_limit_hits")
    op.drop_table("rg_limit_hits")
    op.drop_index("ix_rg_timeouts_ends_at", table_name="rg_timeouts")
    op.drop_index("ix_rg_timeouts_player", table_name="rg_timeouts")
    op.drop_table("rg_timeouts")
    op.drop_index("ix_rg_limits_effective_at", table_name="rg_limits")
    op.drop_index("ix_rg_limits_player", table_name="rg_limits")
    op.drop_table("rg_limits")
    op.drop_table("rg_profiles")
