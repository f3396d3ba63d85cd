"""entry providers for the named-provider walk

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 18:46:09.359292
"""

from alembic import op
import sqlalchemy as sa


revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


SYNC_FUNCTION = """
CREATE FUNCTION sync_waitlist_entry_providers() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        DELETE FROM waitlist_entry_providers WHERE entry_id = NEW.id;
    END IF;
    INSERT INTO waitlist_entry_providers
        (provider_id, entry_id, status, urgent, manual_boost, joined_at, current_appointment_at)
    SELECT DISTINCT p, NEW.id, NEW.status, NEW.urgent, NEW.manual_boost, NEW.joined_at,
           NEW.current_appointment_at
    FROM unnest(NEW.provider_ids) AS p
    WHERE p IS NOT NULL;
    RETURN NULL;
END
$$ LANGUAGE plpgsql
"""

SYNC_TRIGGER = """
CREATE TRIGGER waitlist_entry_providers_sync
AFTER INSERT OR UPDATE OF provider_ids, status, urgent, manual_boost, joined_at, current_appointment_at
ON waitlist_entries
FOR EACH ROW EXECUTE FUNCTION sync_waitlist_entry_providers()
"""

BACKFILL = """
INSERT INTO waitlist_entry_providers
    (provider_id, entry_id, status, urgent, manual_boost, joined_at, current_appointment_at)
SELECT DISTINCT p, w.id, w.status, w.urgent, w.manual_boost, w.joined_at, w.current_appointment_at
FROM waitlist_entries w, unnest(w.provider_ids) AS p
WHERE p IS NOT NULL
"""


def upgrade() -> None:
    op.create_table(
        "waitlist_entry_providers",
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("manual_boost", sa.SmallInteger(), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("current_appointment_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["waitlist_entries.id"],
            name=op.f("fk_waitlist_entry_providers_entry_id_waitlist_entries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "provider_id", "entry_id", name=op.f("pk_waitlist_entry_providers")
        ),
    )
    op.create_index(
        "ix_entry_providers_latest_appointment",
        "waitlist_entry_providers",
        ["provider_id", "current_appointment_at"],
        unique=False,
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_index(
        "ix_entry_providers_walk_boosted",
        "waitlist_entry_providers",
        ["provider_id", sa.literal_column("manual_boost DESC"), "joined_at", "entry_id"],
        unique=False,
        postgresql_where=sa.text("status = 'active' AND NOT urgent AND manual_boost > 0"),
    )
    op.create_index(
        "ix_entry_providers_walk_plain",
        "waitlist_entry_providers",
        ["provider_id", sa.literal_column("manual_boost DESC"), "joined_at", "entry_id"],
        unique=False,
        postgresql_where=sa.text("status = 'active' AND NOT urgent AND manual_boost = 0"),
    )
    op.create_index(
        "ix_entry_providers_walk_urgent",
        "waitlist_entry_providers",
        ["provider_id", sa.literal_column("manual_boost DESC"), "joined_at", "entry_id"],
        unique=False,
        postgresql_where=sa.text("status = 'active' AND urgent"),
    )
    op.create_index(
        op.f("ix_waitlist_entry_providers_entry_id"),
        "waitlist_entry_providers",
        ["entry_id"],
        unique=False,
    )
    op.execute(SYNC_FUNCTION)
    op.execute(SYNC_TRIGGER)
    op.execute(BACKFILL)


def downgrade() -> None:
    op.execute("DROP TRIGGER waitlist_entry_providers_sync ON waitlist_entries")
    op.execute("DROP FUNCTION sync_waitlist_entry_providers()")
    op.drop_index(
        "ix_entry_providers_walk_urgent",
        table_name="waitlist_entry_providers",
        postgresql_where=sa.text("status = 'active' AND urgent"),
    )
    op.drop_index(
        "ix_entry_providers_walk_plain",
        table_name="waitlist_entry_providers",
        postgresql_where=sa.text("status = 'active' AND NOT urgent AND manual_boost = 0"),
    )
    op.drop_index(
        "ix_entry_providers_walk_boosted",
        table_name="waitlist_entry_providers",
        postgresql_where=sa.text("status = 'active' AND NOT urgent AND manual_boost > 0"),
    )
    op.drop_index(
        "ix_entry_providers_latest_appointment",
        table_name="waitlist_entry_providers",
        postgresql_where=sa.text("status = 'active'"),
    )
    op.drop_table("waitlist_entry_providers")
