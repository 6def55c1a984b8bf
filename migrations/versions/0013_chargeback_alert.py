"""alerts: the `chargeback_recorded` rule (a deposit charged back), raised when finance records one

Revision ID: 0013_chargeback_alert
Revises: 0012_alert_deliveries

An action-time rule (`app/services/alerts/actions.py`): recording a chargeback (`chargeback.record`) opens an
alert about the deposit and its player (critical: e-mailed and posted like the other critical rules).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013_chargeback_alert"
down_revision: str | None = "0012_alert_deliveries"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_CODES = (
    "large_withdrawal", "ggr_drop", "postback_failures", "kyc_sla", "failed_logins", "blacklist_matches",
    "ingest_health", "rg_limit_hits", "role_granted", "staff_2fa_reset", "large_adjustment_approved",
    "self_exclusion_ended",
)  # fmt: skip
NEW_CODE = "chargeback_recorded"
RULE = {
    "code": NEW_CODE,
    "name": "Chargeback recorded",
    "description": "A deposit was charged back (recorded by finance): the player's balance was debited and the"
    " player's risk score raised. Raised at the moment of the action.",
    "params": {},
    "severity": "critical",
}


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
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
    op.execute(f"DELETE FROM alert_deliveries WHERE alert_id IN (SELECT id FROM alerts WHERE rule_code = '{NEW_CODE}')")
    op.execute(f"DELETE FROM alerts WHERE rule_code = '{NEW_CODE}'")
    op.execute(f"DELETE FROM alert_rules WHERE code = '{NEW_CODE}'")
    op.drop_constraint(op.f("ck_alert_rules_code"), "alert_rules", type_="check")
    op.create_check_constraint(op.f("ck_alert_rules_code"), "alert_rules", _in("code", OLD_CODES))
