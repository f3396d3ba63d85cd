"""selection walk indexes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 18:28:24.003299
"""

from alembic import op
import sqlalchemy as sa


revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_waitlist_latest_appointment_anyone",
        "waitlist_entries",
        ["current_appointment_at"],
        unique=False,
        postgresql_where=sa.text(
            "status = 'active' AND provider_ids IS NULL AND provider_type IS NULL"
        ),
    )
    op.create_index(
        "ix_waitlist_latest_appointment_type",
        "waitlist_entries",
        ["provider_type", "current_appointment_at"],
        unique=False,
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_index(
        "ix_waitlist_walk_anyone_boosted",
        "waitlist_entries",
        [sa.literal_column("manual_boost DESC"), "joined_at", "id"],
        unique=False,
        postgresql_where=sa.text(
            "status = 'active' AND NOT urgent AND manual_boost > 0 AND provider_ids IS NULL AND provider_type IS NULL"
        ),
    )
    op.create_index(
        "ix_waitlist_walk_anyone_plain",
        "waitlist_entries",
        [sa.literal_column("manual_boost DESC"), "joined_at", "id"],
        unique=False,
        postgresql_where=sa.text(
            "status = 'active' AND NOT urgent AND manual_boost = 0 AND provider_ids IS NULL AND provider_type IS NULL"
        ),
    )
    op.create_index(
        "ix_waitlist_walk_anyone_urgent",
        "waitlist_entries",
        [sa.literal_column("manual_boost DESC"), "joined_at", "id"],
        unique=False,
        postgresql_where=sa.text(
            "status = 'active' AND urgent AND provider_ids IS NULL AND provider_type IS NULL"
        ),
    )
    op.create_index(
        "ix_waitlist_walk_type_boosted",
        "waitlist_entries",
        ["provider_type", sa.literal_column("manual_boost DESC"), "joined_at", "id"],
        unique=False,
        postgresql_where=sa.text("status = 'active' AND NOT urgent AND manual_boost > 0"),
    )
    op.create_index(
        "ix_waitlist_walk_type_plain",
        "waitlist_entries",
        ["provider_type", sa.literal_column("manual_boost DESC"), "joined_at", "id"],
        unique=False,
        postgresql_where=sa.text("status = 'active' AND NOT urgent AND manual_boost = 0"),
    )
    op.create_index(
        "ix_waitlist_walk_type_urgent",
        "waitlist_entries",
        ["provider_type", sa.literal_column("manual_boost DESC"), "joined_at", "id"],
        unique=False,
        postgresql_where=sa.text("status = 'active' AND urgent"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_waitlist_walk_type_urgent",
        table_name="waitlist_entries",
        postgresql_where=sa.text("status = 'active' AND urgent"),
    )
    op.drop_index(
        "ix_waitlist_walk_type_plain",
        table_name="waitlist_entries",
        postgresql_where=sa.text("status = 'active' AND NOT urgent AND manual_boost = 0"),
    )
    op.drop_index(
        "ix_waitlist_walk_type_boosted",
        table_name="waitlist_entries",
        postgresql_where=sa.text("status = 'active' AND NOT urgent AND manual_boost > 0"),
    )
    op.drop_index(
        "ix_waitlist_walk_anyone_urgent",
        table_name="waitlist_entries",
        postgresql_where=sa.text(
            "status = 'active' AND urgent AND provider_ids IS NULL AND provider_type IS NULL"
        ),
    )
    op.drop_index(
        "ix_waitlist_walk_anyone_plain",
        table_name="waitlist_entries",
        postgresql_where=sa.text(
            "status = 'active' AND NOT urgent AND manual_boost = 0 AND provider_ids IS NULL AND provider_type IS NULL"
        ),
    )
    op.drop_index(
        "ix_waitlist_walk_anyone_boosted",
        table_name="waitlist_entries",
        postgresql_where=sa.text(
            "status = 'active' AND NOT urgent AND manual_boost > 0 AND provider_ids IS NULL AND provider_type IS NULL"
        ),
    )
    op.drop_index(
        "ix_waitlist_latest_appointment_type",
        table_name="waitlist_entries",
        postgresql_where=sa.text("status = 'active'"),
    )
    op.drop_index(
        "ix_waitlist_latest_appointment_anyone",
        table_name="waitlist_entries",
        postgresql_where=sa.text(
            "status = 'active' AND provider_ids IS NULL AND provider_type IS NULL"
        ),
    )
