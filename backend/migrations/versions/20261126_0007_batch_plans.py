"""batch plans: each offer keeps the hold its batch was planned with; each slot says why its latest
batch had the size it had (BATCH_MODE=adaptive)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 21:30:00
"""

from alembic import op
import sqlalchemy as sa


revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("offers", sa.Column("hold", sa.Interval))
    op.add_column("cancellations", sa.Column("batch_reason", sa.Text))


def downgrade() -> None:
    op.drop_column("cancellations", "batch_reason")
    op.drop_column("offers", "hold")
