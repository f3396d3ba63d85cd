"""one open or filled slot per provider and start; idempotency keys for staff POSTs

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 19:00:00
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg


revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    # A clinic may already hold the same slot twice. Which one to keep is staff's call (one may
    # have offers out), so the migration stops and names them rather than choosing.
    duplicates = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT provider_id, slot_start, array_agg(id ORDER BY id) AS ids FROM cancellations"
                " WHERE status IN ('open', 'filled') GROUP BY provider_id, slot_start"
                " HAVING count(*) > 1"
            )
        )
        .all()
    )
    if duplicates:
        listed = "; ".join(
            f"provider {p} at {s.isoformat()}: ids {ids}" for p, s, ids in duplicates
        )
        raise RuntimeError(
            "the same slot is open or filled more than once; abort the extra ones "
            f"(POST /api/v1/cancellations/<id>/abort) and migrate again: {listed}"
        )
    op.create_index(
        "uq_cancellations_provider_slot",
        "cancellations",
        ["provider_id", "slot_start"],
        unique=True,
        postgresql_where=sa.text("status IN ('open', 'filled')"),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("request_hash", sa.Text, nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("response", pg.JSONB),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("scope", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_index(op.f("ix_idempotency_keys_created_at"), "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_index("uq_cancellations_provider_slot", table_name="cancellations")
