"""reliable messaging: released offers, outbox leases and refs, inbound inbox, send ledger, breaker

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 14:30:00
"""

from alembic import op
import sqlalchemy as sa


revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
OFFER_STATES_OLD = "'pending', 'accepted', 'declined', 'expired', 'withdrawn', 'failed'"
OFFER_STATES_NEW = OFFER_STATES_OLD + ", 'released'"


def upgrade() -> None:
    # --- offers: a "released" offer never reached the patient and costs them nothing
    op.drop_constraint(op.f("ck_offers_offer_state"), "offers", type_="check")
    op.create_check_constraint(op.f("ck_offers_offer_state"), "offers", f"state IN ({OFFER_STATES_NEW})")
    op.drop_constraint(op.f("uq_offers_cancellation_patient"), "offers", type_="unique")
    op.create_index(
        "uq_offers_cancellation_patient",
        "offers",
        ["cancellation_id", "patient_id"],
        unique=True,
        postgresql_where=sa.text("state <> 'released'"),
    )

    # --- patients: a number that reached the wrong person is never texted until staff fix it
    op.add_column("patients", sa.Column("wrong_number_at", TS))

    # --- outbox: in-flight lease, the Twilio sid and delivery state of the exact text
    op.add_column("outbox", sa.Column("lease_until", TS))
    op.add_column("outbox", sa.Column("message_sid", sa.Text))
    op.add_column("outbox", sa.Column("delivery_status", sa.Text))
    op.add_column("outbox", sa.Column("permanent_error_code", sa.Text))
    op.create_index(
        "ix_outbox_in_flight",
        "outbox",
        ["lease_until"],
        postgresql_where=sa.text("status = 'sending'"),
    )
    op.create_index("ix_outbox_message_sid", "outbox", ["message_sid"])

    # --- messaging health: consecutive failed sends, shared by every backend replica
    op.create_table(
        "messaging_health",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("paused_since", TS),
        sa.Column("last_error", sa.Text),
        sa.Column("updated_at", TS),
        sa.CheckConstraint("id = 1", name=op.f("ck_messaging_health_single_row")),
    )
    op.execute("INSERT INTO messaging_health (id, consecutive_failures) VALUES (1, 0)")

    # --- inbound inbox (written by the Rasa connector): processed at least once, applied once
    op.add_column("inbound_messages", sa.Column("phone", sa.Text))
    op.add_column("inbound_messages", sa.Column("body", sa.Text))
    op.add_column("inbound_messages", sa.Column("num_media", sa.Integer))
    op.add_column(
        "inbound_messages",
        sa.Column("status", sa.Text, nullable=False, server_default="done"),
    )
    op.add_column(
        "inbound_messages", sa.Column("attempts", sa.Integer, nullable=False, server_default="0")
    )
    op.add_column("inbound_messages", sa.Column("next_attempt_at", TS))
    op.add_column("inbound_messages", sa.Column("lease_until", TS))
    op.add_column("inbound_messages", sa.Column("last_error", sa.Text))
    op.add_column("inbound_messages", sa.Column("done_at", TS))
    op.create_index(
        "ix_inbound_unfinished",
        "inbound_messages",
        ["phone", "received_at"],
        postgresql_where=sa.text("status <> 'done'"),
    )

    # --- outbound send ledger (written by the Rasa connector): one Twilio message per ref
    op.create_table(
        "sms_sends",
        sa.Column("ref", sa.Text, primary_key=True),
        sa.Column("phone", sa.Text, nullable=False),
        sa.Column("body_sha256", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),  # sending | sent | failed
        sa.Column("message_sid", sa.Text),
        sa.Column("error_code", sa.Text),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_table("sms_sends")
    op.drop_index("ix_inbound_unfinished", table_name="inbound_messages")
    for column in (
        "done_at",
        "last_error",
        "lease_until",
        "next_attempt_at",
        "attempts",
        "status",
        "num_media",
        "body",
        "phone",
    ):
        op.drop_column("inbound_messages", column)
    op.drop_table("messaging_health")
    op.drop_index("ix_outbox_message_sid", table_name="outbox")
    op.drop_index("ix_outbox_in_flight", table_name="outbox")
    for column in ("permanent_error_code", "delivery_status", "message_sid", "lease_until"):
        op.drop_column("outbox", column)
    op.drop_column("patients", "wrong_number_at")
    op.drop_index("uq_offers_cancellation_patient", table_name="offers")
    op.execute("DELETE FROM offers WHERE state = 'released'")
    op.create_unique_constraint(
        op.f("uq_offers_cancellation_patient"), "offers", ["cancellation_id", "patient_id"]
    )
    op.drop_constraint(op.f("ck_offers_offer_state"), "offers", type_="check")
    op.create_check_constraint(op.f("ck_offers_offer_state"), "offers", f"state IN ({OFFER_STATES_OLD})")
