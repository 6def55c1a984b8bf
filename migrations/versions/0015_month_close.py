"""month-end close: month_closes and restatements (stub being filled)

Revision ID: 0015_month_close
Revises: 0014_staff_second_factor
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0015_month_close"
down_revision: str | None = "0014_staff_second_factor"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
