"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25 17:53:49.339710
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("actor_ref", sa.Text(), nullable=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("entry_id", sa.Integer(), nullable=True),
        sa.Column("cancellation_id", sa.Integer(), nullable=True),
        sa.Column("offer_id", sa.Integer(), nullable=True),
        sa.Column(
            "data",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index(
        op.f("ix_audit_events_cancellation_id"), "audit_events", ["cancellation_id"], unique=False
    )
    op.create_table(
        "inbound_messages",
        sa.Column("message_sid", sa.Text(), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("message_sid", name=op.f("pk_inbound_messages")),
    )
    op.create_table(
        "patients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.Text(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("preferred_language", sa.String(length=2), nullable=False),
        sa.Column("consent_source", sa.Text(), nullable=True),
        sa.Column("consented_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("opted_out", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("opted_out_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("preferred_language IN ('en', 'es')", name=op.f("ck_patients_language")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patients")),
        sa.UniqueConstraint("phone", name=op.f("uq_patients_phone")),
    )
    op.create_table(
        "processed_replies",
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("response", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_processed_replies")),
    )
    op.create_table(
        "providers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("provider_type", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_providers")),
    )
    op.create_table(
        "cancellations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("slot_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("slot_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "open",
                "filled",
                "expired",
                "aborted",
                name="cancellation_status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("filled_by_patient_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("slot_end > slot_start", name=op.f("ck_cancellations_slot_order")),
        sa.ForeignKeyConstraint(
            ["filled_by_patient_id"],
            ["patients.id"],
            name=op.f("fk_cancellations_filled_by_patient_id_patients"),
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"], ["providers.id"], name=op.f("fk_cancellations_provider_id_providers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cancellations")),
    )
    op.create_index(
        "ix_cancellations_open",
        "cancellations",
        ["slot_start"],
        unique=False,
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_table(
        "waitlist_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "active",
                "fulfilled",
                "removed",
                name="entry_status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("provider_ids", postgresql.ARRAY(sa.Integer()), nullable=True),
        sa.Column("provider_type", sa.Text(), nullable=True),
        sa.Column("location", sa.Text(), nullable=True),
        sa.Column("current_appointment_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("not_before", sa.Date(), nullable=True),
        sa.Column("not_after", sa.Date(), nullable=True),
        sa.Column("days_of_week", postgresql.ARRAY(sa.SmallInteger()), nullable=True),
        sa.Column("earliest_time", sa.Time(), nullable=True),
        sa.Column("latest_time", sa.Time(), nullable=True),
        sa.Column("urgent", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("manual_boost", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "manual_boost BETWEEN 0 AND 40", name=op.f("ck_waitlist_entries_boost_range")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_waitlist_entries_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_waitlist_entries")),
    )
    op.create_index(
        "ix_waitlist_active_provider_ids",
        "waitlist_entries",
        ["provider_ids"],
        unique=False,
        postgresql_using="gin",
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_index(
        "ix_waitlist_active_type_location",
        "waitlist_entries",
        ["provider_type", "location"],
        unique=False,
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_index(
        op.f("ix_waitlist_entries_patient_id"), "waitlist_entries", ["patient_id"], unique=False
    )
    op.create_table(
        "offers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cancellation_id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "pending",
                "accepted",
                "declined",
                "expired",
                "withdrawn",
                "failed",
                name="offer_state",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("responded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("close_reason", sa.Text(), nullable=True),
        sa.Column("delivery_status", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["cancellation_id"],
            ["cancellations.id"],
            name=op.f("fk_offers_cancellation_id_cancellations"),
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["waitlist_entries.id"], name=op.f("fk_offers_entry_id_waitlist_entries")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_offers_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_offers")),
        sa.UniqueConstraint("cancellation_id", "patient_id", name="uq_offers_cancellation_patient"),
    )
    op.create_index(
        "ix_offers_due",
        "offers",
        ["expires_at"],
        unique=False,
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.create_index(
        "ix_offers_patient_created", "offers", ["patient_id", "created_at"], unique=False
    )
    op.create_index(
        "uq_offers_one_accepted_per_cancellation",
        "offers",
        ["cancellation_id"],
        unique=True,
        postgresql_where=sa.text("state = 'accepted'"),
    )
    op.create_index(
        "uq_offers_one_pending_per_patient",
        "offers",
        ["patient_id"],
        unique=True,
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("offer_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["offer_id"], ["offers.id"], name=op.f("fk_outbox_offer_id_offers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    op.create_index(
        "ix_outbox_due",
        "outbox",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_outbox_due", table_name="outbox", postgresql_where=sa.text("status = 'pending'")
    )
    op.drop_table("outbox")
    op.drop_index(
        "uq_offers_one_pending_per_patient",
        table_name="offers",
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.drop_index(
        "uq_offers_one_accepted_per_cancellation",
        table_name="offers",
        postgresql_where=sa.text("state = 'accepted'"),
    )
    op.drop_index("ix_offers_patient_created", table_name="offers")
    op.drop_index(
        "ix_offers_due", table_name="offers", postgresql_where=sa.text("state = 'pending'")
    )
    op.drop_table("offers")
    op.drop_index(op.f("ix_waitlist_entries_patient_id"), table_name="waitlist_entries")
    op.drop_index(
        "ix_waitlist_active_type_location",
        table_name="waitlist_entries",
        postgresql_where=sa.text("status = 'active'"),
    )
    op.drop_index(
        "ix_waitlist_active_provider_ids",
        table_name="waitlist_entries",
        postgresql_using="gin",
        postgresql_where=sa.text("status = 'active'"),
    )
    op.drop_table("waitlist_entries")
    op.drop_index(
        "ix_cancellations_open",
        table_name="cancellations",
        postgresql_where=sa.text("status = 'open'"),
    )
    op.drop_table("cancellations")
    op.drop_table("providers")
    op.drop_table("processed_replies")
    op.drop_table("patients")
    op.drop_table("inbound_messages")
    op.drop_index(op.f("ix_audit_events_cancellation_id"), table_name="audit_events")
    op.drop_table("audit_events")
