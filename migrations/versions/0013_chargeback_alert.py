"""alerts: the `chargebacks` rule (a deposit charged back), raised when finance records one and by the evaluator

Revision ID: 0013_chargeback_alert
Revises: 0012_alert_deliveries
"""

from collections.abc import Sequence

revision: str = "0013_chargeback_alert"
down_revision: str | None = "0012_alert_deliveries"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
