"""support cases: ticket assignee, first-response SLA, version; append-only ticket notes, links and player notes

Revision ID: 0010_support_cases
Revises: 0009_responsible_gambling

- `support_tickets` gets `assignee_id`, `first_response_due` (created_at + the priority's first-response SLA,
  stamped by a trigger when the writer leaves it out: urgent 1 h, high 4 h, normal 24 h, low 72 h — the same
  table as `app.models.TICKET_FIRST_RESPONSE_HOURS`), `first_response_at` (the first reply or status move by
  staff) and a trigger-maintained `version` (what support forms check). Existing tickets: due from their
  priority; a ticket no longer open counts as answered when it was resolved or last updated; nobody assigned
  (the demo's seeded tickets wait in the "unassigned" queue).
- `ticket_notes` (replies, internal notes, status moves' notes), `ticket_links` (to a KYC case or a balance
  adjustment of the same player) and `player_notes` are append-only: a trigger refuses UPDATE and DELETE
  (whoever runs them), and the app role may only SELECT and INSERT.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_support_cases"
down_revision: str | None = "0009_responsible_gambling"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "pitboss_app"
TZ = sa.DateTime(timezone=True)
SLA_HOURS = {"urgent": 1, "high": 4, "normal": 24, "low": 72}  # frozen copy of TICKET_FIRST_RESPONSE_HOURS
APPEND_ONLY = ("ticket_notes", "ticket_links", "player_notes")


def _sla_case(priority: str) -> str:
    whens = " ".join(f"WHEN '{p}' THEN {h}" for p, h in SLA_HOURS.items())
    return f"make_interval(hours => CASE {priority} {whens} ELSE 24 END)"


def _now() -> sa.TextClause:
    return sa.text("now()")


def upgrade() -> None:
    op.add_column("support_tickets", sa.Column("assignee_id", sa.Integer(), nullable=True))
    op.add_column("support_tickets", sa.Column("first_response_due", TZ, nullable=True))
    op.add_column("support_tickets", sa.Column("first_response_at", TZ, nullable=True))
    op.add_column("support_tickets", sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False))
    op.create_foreign_key(
        op.f("fk_support_tickets_assignee_id_staff_users"), "support_tickets", "staff_users", ["assignee_id"], ["id"]
    )
    op.execute(
        f"UPDATE support_tickets SET first_response_due = created_at + {_sla_case('priority')},"
        " first_response_at = CASE WHEN status <> 'open' THEN coalesce(resolved_at, updated_at) END"
    )
    op.alter_column("support_tickets", "first_response_due", nullable=False)
    op.create_index("ix_support_tickets_assignee", "support_tickets", ["assignee_id", "status"])
    op.create_index("ix_support_tickets_status_due", "support_tickets", ["status", "first_response_due"])
    op.execute(
        f"""
        CREATE FUNCTION pitboss_ticket_sla() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.first_response_due IS NULL THEN
                NEW.first_response_due := NEW.created_at + {_sla_case("NEW.priority")};
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER support_tickets_sla BEFORE INSERT ON support_tickets
            FOR EACH ROW EXECUTE FUNCTION pitboss_ticket_sla();
        DROP TRIGGER support_tickets_touch ON support_tickets;
        CREATE TRIGGER support_tickets_touch BEFORE INSERT OR UPDATE ON support_tickets
            FOR EACH ROW EXECUTE FUNCTION pitboss_touch_versioned();
        """
    )

    op.create_table(
        "ticket_notes",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("ticket_id", sa.BigInteger(), nullable=False),
        sa.Column("operator_id", sa.SmallInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status_from", sa.String(length=16), nullable=True),
        sa.Column("status_to", sa.String(length=16), nullable=True),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("staff_name", sa.Text(), nullable=False),
        sa.Column("created_at", TZ, server_default=_now(), nullable=False),
        sa.CheckConstraint("kind IN ('reply', 'internal', 'status')", name=op.f("ck_ticket_notes_kind")),
        sa.CheckConstraint("length(trim(body)) > 0", name=op.f("ck_ticket_notes_body")),
        sa.CheckConstraint("(kind = 'status') = (status_to IS NOT NULL)", name=op.f("ck_ticket_notes_status_move")),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["support_tickets.id"], name=op.f("fk_ticket_notes_ticket_id_support_tickets")
        ),
        sa.ForeignKeyConstraint(["operator_id"], ["operators.id"], name=op.f("fk_ticket_notes_operator_id_operators")),
        sa.ForeignKeyConstraint(["staff_id"], ["staff_users.id"], name=op.f("fk_ticket_notes_staff_id_staff_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_notes")),
    )
    op.create_index("ix_ticket_notes_ticket", "ticket_notes", ["ticket_id", "created_at"])
    op.create_table(
        "ticket_links",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("ticket_id", sa.BigInteger(), nullable=False),
        sa.Column("kyc_case_id", sa.BigInteger(), nullable=True),
        sa.Column("adjustment_id", sa.BigInteger(), nullable=True),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("created_at", TZ, server_default=_now(), nullable=False),
        sa.CheckConstraint("num_nonnulls(kyc_case_id, adjustment_id) = 1", name=op.f("ck_ticket_links_one_target")),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["support_tickets.id"], name=op.f("fk_ticket_links_ticket_id_support_tickets")
        ),
        sa.ForeignKeyConstraint(["kyc_case_id"], ["kyc_cases.id"], name=op.f("fk_ticket_links_kyc_case_id_kyc_cases")),
        sa.ForeignKeyConstraint(
            ["adjustment_id"],
            ["balance_adjustments.id"],
            name=op.f("fk_ticket_links_adjustment_id_balance_adjustments"),
        ),
        sa.ForeignKeyConstraint(["staff_id"], ["staff_users.id"], name=op.f("fk_ticket_links_staff_id_staff_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_links")),
        sa.UniqueConstraint("ticket_id", "kyc_case_id", name="uq_ticket_links_kyc_case"),
        sa.UniqueConstraint("ticket_id", "adjustment_id", name="uq_ticket_links_adjustment"),
    )
    op.create_table(
        "player_notes",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("player_id", sa.BigInteger(), nullable=False),
        sa.Column("operator_id", sa.SmallInteger(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("staff_name", sa.Text(), nullable=False),
        sa.Column("created_at", TZ, server_default=_now(), nullable=False),
        sa.CheckConstraint("length(trim(body)) > 0", name=op.f("ck_player_notes_body")),
        sa.ForeignKeyConstraint(["player_id"], ["players.id"], name=op.f("fk_player_notes_player_id_players")),
        sa.ForeignKeyConstraint(["operator_id"], ["operators.id"], name=op.f("fk_player_notes_operator_id_operators")),
        sa.ForeignKeyConstraint(["staff_id"], ["staff_users.id"], name=op.f("fk_player_notes_staff_id_staff_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_player_notes")),
    )
    op.create_index("ix_player_notes_player", "player_notes", ["player_id", "created_at"])

    # Append-only whoever writes (a trigger), and the app role may only read and insert (grants). TRUNCATE is
    # left to the owner (reseeding empties the generated tables and what points at them); the app role lacks it.
    op.execute(
        """
        CREATE FUNCTION pitboss_support_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$;
        """
    )
    for table in APPEND_ONLY:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}"
            " FOR EACH ROW EXECUTE FUNCTION pitboss_support_append_only()"
        )
    tables = ", ".join(APPEND_ONLY)
    sequences = ", ".join(f"{t}_id_seq" for t in APPEND_ONLY)
    op.execute(
        f"""
        REVOKE ALL ON {tables} FROM {APP_ROLE};
        GRANT SELECT, INSERT ON {tables} TO {APP_ROLE};
        GRANT USAGE, SELECT ON SEQUENCE {sequences} TO {APP_ROLE};
        """
    )


def downgrade() -> None:
    for table in APPEND_ONLY:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    op.execute("DROP FUNCTION IF EXISTS pitboss_support_append_only()")
    op.drop_index("ix_player_notes_player", table_name="player_notes")
    op.drop_table("player_notes")
    op.drop_table("ticket_links")
    op.drop_index("ix_ticket_notes_ticket", table_name="ticket_notes")
    op.drop_table("ticket_notes")
    op.execute(
        """
        DROP TRIGGER IF EXISTS support_tickets_sla ON support_tickets;
        DROP FUNCTION IF EXISTS pitboss_ticket_sla();
        DROP TRIGGER support_tickets_touch ON support_tickets;
        CREATE TRIGGER support_tickets_touch BEFORE INSERT OR UPDATE ON support_tickets
            FOR EACH ROW EXECUTE FUNCTION pitboss_touch();
        """
    )
    op.drop_index("ix_support_tickets_status_due", table_name="support_tickets")
    op.drop_index("ix_support_tickets_assignee", table_name="support_tickets")
    op.drop_constraint(op.f("fk_support_tickets_assignee_id_staff_users"), "support_tickets", type_="foreignkey")
    for column in ("version", "first_response_at", "first_response_due", "assignee_id"):
        op.drop_column("support_tickets", column)
