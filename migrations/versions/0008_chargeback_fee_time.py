"""payments: the chargeback's own time and fee

Revision ID: 0008_chargeback_fee_time
Revises: 0007_staff_login_throttle

A chargeback is an event of its own (SPEC §3): its amount and its fee are dated on the day it happened,
while the deposit stays on the day it was made. Until now the platform kept neither apart:
- the day of a chargeback was the row's `updated_at`, which any later update of the row moves;
- the payment provider's chargeback fee was added into `provider_fee`, so the deposit's processing fee
  (dated at the payment's creation) and the dispute fee (dated at the chargeback) were one figure.

New columns:
- `charged_back_at` (timestamptz, NULL): when the deposit was charged back; set by whoever records the
  chargeback. Existing chargebacks get their `updated_at` (the time the status became `chargeback`).
- `chargeback_fee` (numeric(18,2), default 0, ≥ 0): the fee the payment provider charged for the
  chargeback, apart from `provider_fee` (the fee of the payment itself). Existing rows keep 0: their
  combined fee cannot be split after the fact and stays in `provider_fee` (see docs/METRICS.md).

The app role already has SELECT/INSERT/UPDATE on payments (table-level grants cover new columns).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_chargeback_fee_time"
down_revision: str | None = "0007_staff_login_throttle"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("payments", sa.Column("charged_back_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "payments", sa.Column("chargeback_fee", sa.Numeric(18, 2), server_default=sa.text("0"), nullable=False)
    )
    op.create_check_constraint(op.f("ck_payments_chargeback_fee_nonneg"), "payments", "chargeback_fee >= 0")
    op.execute("UPDATE payments SET charged_back_at = updated_at WHERE status = 'chargeback'")


def downgrade() -> None:
    op.drop_constraint(op.f("ck_payments_chargeback_fee_nonneg"), "payments", type_="check")
    op.drop_column("payments", "chargeback_fee")
    op.drop_column("payments", "charged_back_at")
