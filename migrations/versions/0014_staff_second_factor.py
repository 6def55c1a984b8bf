"""staff second factor (TOTP): factors, recovery codes, sessions pending their second step

Revision ID: 0014_staff_second_factor
Revises: 0013_chargeback_alert
"""

from collections.abc import Sequence

revision: str = "0014_staff_second_factor"
down_revision: str | None = "0013_chargeback_alert"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
