"""Tables, and the classical mapping of the domain classes onto them.

The domain classes know nothing about SQLAlchemy; `start_mappers()` instruments them once per process.
The constraints at the bottom of each table are the database's half of the claim rules.
"""

from __future__ import annotations

import enum

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.orm import registry, relationship

from waitlist.domain import accounts, model

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)
mapper_registry = registry(metadata=metadata)


def _enum(enum_cls: type[enum.Enum], name: str) -> sa.Enum:
    # stored as plain text with a CHECK, so adding a state later is an easy migration
    return sa.Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


TS = sa.DateTime(timezone=True)

providers = sa.Table(
    "providers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("provider_type", sa.Text, nullable=False),
    sa.Column("created_at", TS, nullable=False),
)

patients = sa.Table(
    "patients",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("phone", sa.Text, nullable=False, unique=True),
    sa.Column("display_name", sa.Text, nullable=False),
    sa.Column("preferred_language", sa.String(2), nullable=False),
    sa.Column("consent_source", sa.Text),
    sa.Column("consented_at", TS),
    sa.Column("opted_out", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("opted_out_at", TS),
    sa.Column("wrong_number_at", TS),
    sa.Column("created_at", TS, nullable=False),
    sa.CheckConstraint("preferred_language IN ('en', 'es')", name="language"),
)

waitlist_entries = sa.Table(
    "waitlist_entries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("patient_id", sa.ForeignKey("patients.id"), nullable=False, index=True),
    sa.Column("status", _enum(model.EntryStatus, "entry_status"), nullable=False),
    sa.Column("provider_ids", pg.ARRAY(sa.Integer)),
    sa.Column("provider_type", sa.Text),
    sa.Column("location", sa.Text),
    sa.Column("current_appointment_at", TS),
    sa.Column("not_before", sa.Date),
    sa.Column("not_after", sa.Date),
    sa.Column("days_of_week", pg.ARRAY(sa.SmallInteger)),
    sa.Column("earliest_time", sa.Time),
    sa.Column("latest_time", sa.Time),
    sa.Column("urgent", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("manual_boost", sa.SmallInteger, nullable=False, server_default="0"),
    sa.Column("notes", sa.Text),
    sa.Column("joined_at", TS, nullable=False),
    sa.Column("updated_at", TS),
    sa.CheckConstraint("manual_boost BETWEEN 0 AND 40", name="boost_range"),
    # the selection query scans active entries only; these keep that scan narrow
    sa.Index(
        "ix_waitlist_active_type_location",
        "provider_type",
        "location",
        postgresql_where=sa.text("status = 'active'"),
    ),
    # selection walks (adapters/selection.py): one index per walk, in walk order
    *[
        sa.Index(
            f"ix_waitlist_walk_{match}_{group}",
            *(["provider_type"] if match == "type" else []),
            sa.text("manual_boost DESC"),
            "joined_at",
            "id",
            postgresql_where=sa.text(f"status = 'active' AND {group_sql}{match_sql}"),
        )
        for match, match_sql in (
            ("type", ""),
            ("anyone", " AND provider_ids IS NULL AND provider_type IS NULL"),
        )
        for group, group_sql in (
            ("urgent", "urgent"),
            ("boosted", "NOT urgent AND manual_boost > 0"),
            ("plain", "NOT urgent AND manual_boost = 0"),
        )
    ],
    # the latest current appointment per way of matching (see selection.LATEST_APPOINTMENT_SQL)
    sa.Index(
        "ix_waitlist_latest_appointment_type",
        "provider_type",
        "current_appointment_at",
        postgresql_where=sa.text("status = 'active'"),
    ),
    sa.Index(
        "ix_waitlist_latest_appointment_anyone",
        "current_appointment_at",
        postgresql_where=sa.text(
            "status = 'active' AND provider_ids IS NULL AND provider_type IS NULL"
        ),
    ),
    sa.Index(
        "ix_waitlist_active_provider_ids",
        "provider_ids",
        postgresql_using="gin",
        postgresql_where=sa.text("status = 'active'"),
    ),
)

# Filled by a trigger on waitlist_entries (migration 0003): one row per provider an entry names, so the
# selection can walk "entries naming this provider" in score order through an index.
waitlist_entry_providers = sa.Table(
    "waitlist_entry_providers",
    metadata,
    sa.Column("provider_id", sa.Integer, primary_key=True),
    sa.Column(
        "entry_id",
        sa.ForeignKey("waitlist_entries.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,  # the trigger replaces an entry's rows by entry_id
    ),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("urgent", sa.Boolean, nullable=False),
    sa.Column("manual_boost", sa.SmallInteger, nullable=False),
    sa.Column("joined_at", TS, nullable=False),
    sa.Column("current_appointment_at", TS),
    *[
        sa.Index(
            f"ix_entry_providers_walk_{group}",
            "provider_id",
            sa.text("manual_boost DESC"),
            "joined_at",
            "entry_id",
            postgresql_where=sa.text(f"status = 'active' AND {group_sql}"),
        )
        for group, group_sql in (
            ("urgent", "urgent"),
            ("boosted", "NOT urgent AND manual_boost > 0"),
            ("plain", "NOT urgent AND manual_boost = 0"),
        )
    ],
    sa.Index(
        "ix_entry_providers_latest_appointment",
        "provider_id",
        "current_appointment_at",
        postgresql_where=sa.text("status = 'active'"),
    ),
)

cancellations = sa.Table(
    "cancellations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("provider_id", sa.ForeignKey("providers.id"), nullable=False),
    sa.Column("location", sa.Text, nullable=False),
    sa.Column("slot_start", TS, nullable=False),
    sa.Column("slot_end", TS, nullable=False),
    sa.Column("status", _enum(model.CancellationStatus, "cancellation_status"), nullable=False),
    sa.Column("filled_by_patient_id", sa.ForeignKey("patients.id")),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("closed_at", TS),
    sa.Column("schedule_entered_at", TS),
    sa.Column("schedule_entered_by", sa.Text),
    # why the latest batch of offers had the size and hold it had, for staff
    sa.Column("batch_reason", sa.Text),
    sa.CheckConstraint("slot_end > slot_start", name="slot_order"),
    sa.Index("ix_cancellations_open", "slot_start", postgresql_where=sa.text("status = 'open'")),
    # One chair, one slot: the same cancellation entered twice (a double click, a retried request)
    # cannot open a second slot while the first is open or filled.
    sa.Index(
        "uq_cancellations_provider_slot",
        "provider_id",
        "slot_start",
        unique=True,
        postgresql_where=sa.text("status IN ('open', 'filled')"),
    ),
)

offers = sa.Table(
    "offers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("cancellation_id", sa.ForeignKey("cancellations.id"), nullable=False),
    sa.Column("entry_id", sa.ForeignKey("waitlist_entries.id"), nullable=False),
    sa.Column("patient_id", sa.ForeignKey("patients.id"), nullable=False),
    sa.Column("state", _enum(model.OfferState, "offer_state"), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("sent_at", TS),
    sa.Column("expires_at", TS),
    sa.Column("responded_at", TS),
    sa.Column("closed_at", TS),
    sa.Column("close_reason", sa.Text),
    sa.Column("delivery_status", sa.Text),
    # the hold its batch was planned with (BATCH_MODE=adaptive varies it; NULL in older rows)
    sa.Column("hold", sa.Interval),
    # one offer per patient per slot (an offer released by our own outage does not count)
    sa.Index(
        "uq_offers_cancellation_patient",
        "cancellation_id",
        "patient_id",
        unique=True,
        postgresql_where=sa.text("state <> 'released'"),
    ),
    # exactly one winner per slot, whatever the application does
    sa.Index(
        "uq_offers_one_accepted_per_cancellation",
        "cancellation_id",
        unique=True,
        postgresql_where=sa.text("state = 'accepted'"),
    ),
    # never two pending offers for one patient
    sa.Index(
        "uq_offers_one_pending_per_patient",
        "patient_id",
        unique=True,
        postgresql_where=sa.text("state = 'pending'"),
    ),
    sa.Index("ix_offers_due", "expires_at", postgresql_where=sa.text("state = 'pending'")),
    sa.Index("ix_offers_patient_created", "patient_id", "created_at"),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),  # offer | slot_filled | offer_withdrawn
    sa.Column("offer_id", sa.ForeignKey("offers.id"), nullable=False),
    # pending -> sending (leased, no lock held while Rasa and Twilio work) -> sent | failed | dropped
    sa.Column("status", sa.Text, nullable=False, server_default="pending"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", TS, nullable=False),
    sa.Column("lease_until", TS),
    sa.Column("last_error", sa.Text),
    sa.Column("permanent_error_code", sa.Text),
    sa.Column("message_sid", sa.Text),
    sa.Column("delivery_status", sa.Text),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("sent_at", TS),
    sa.Index("ix_outbox_due", "next_attempt_at", postgresql_where=sa.text("status = 'pending'")),
    sa.Index("ix_outbox_in_flight", "lease_until", postgresql_where=sa.text("status = 'sending'")),
    sa.Index("ix_outbox_message_sid", "message_sid"),
)

# One row: how many sends failed in a row, for the circuit breaker (shared by every replica).
messaging_health = sa.Table(
    "messaging_health",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("paused_since", TS),
    sa.Column("last_error", sa.Text),
    sa.Column("updated_at", TS),
    sa.CheckConstraint("id = 1", name="single_row"),
)

audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("occurred_at", TS, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),  # staff | patient | system
    sa.Column("actor_ref", sa.Text),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("patient_id", sa.Integer),
    sa.Column("entry_id", sa.Integer),
    sa.Column("cancellation_id", sa.Integer, index=True),
    sa.Column("offer_id", sa.Integer),
    sa.Column("data", pg.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
)

# Staff accounts (domain/accounts.py) and their console sessions.
staff_users = sa.Table(
    "staff_users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("username", sa.Text, nullable=False, unique=True),
    sa.Column("password_hash", sa.Text, nullable=False),  # argon2id
    sa.Column("role", _enum(accounts.Role, "staff_role"), nullable=False),
    sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
    sa.Column("locked_until", TS),
    sa.Column("api_token_hash", sa.Text, unique=True),  # sha256 of the personal API token
    sa.Column("created_at", TS, nullable=False),
    sa.Column("disabled_at", TS),
)
staff_sessions = sa.Table(
    "staff_sessions",
    metadata,
    sa.Column("token_hash", sa.Text, primary_key=True),  # sha256 of the cookie's value
    sa.Column("user_id", sa.ForeignKey("staff_users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("csrf_token", sa.Text, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("expires_at", TS, nullable=False, index=True),
)

# A call-back request (a handoff_requested audit event) that staff have dealt with.
callbacks_done = sa.Table(
    "callbacks_done",
    metadata,
    sa.Column("handoff_event_id", sa.BigInteger, primary_key=True),
    sa.Column("done_at", TS, nullable=False),
    sa.Column("done_by", sa.Text, nullable=False),
    sa.Column("note", sa.Text),
)

# The first answer to a staff POST sent with an Idempotency-Key, replayed to a retry of it.
idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("scope", sa.Text, primary_key=True),  # method and route: "POST /api/v1/cancellations"
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("request_hash", sa.Text, nullable=False),
    sa.Column("status_code", sa.Integer),  # NULL while the first request runs
    sa.Column("response", pg.JSONB),
    sa.Column("created_at", TS, nullable=False, index=True),
)

processed_replies = sa.Table(
    "processed_replies",
    metadata,
    sa.Column("message_id", sa.Text, primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("response", pg.JSONB, nullable=False),
    sa.Column("created_at", TS, nullable=False),
)

# Written by the Rasa Twilio connector: the inbox of inbound texts. A row is `done` only once its
# turn ran with every part up; until then it is retried in arrival order per phone.
inbound_messages = sa.Table(
    "inbound_messages",
    metadata,
    sa.Column("message_sid", sa.Text, primary_key=True),
    sa.Column("received_at", TS, nullable=False, server_default=sa.func.now()),
    sa.Column("phone", sa.Text),
    sa.Column("body", sa.Text),  # cleared once done: the tracker keeps the conversation
    sa.Column("num_media", sa.Integer),
    sa.Column("status", sa.Text, nullable=False, server_default="done"),  # pending|processing|done
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", TS),
    sa.Column("lease_until", TS),
    sa.Column("last_error", sa.Text),
    sa.Column("done_at", TS),
    sa.Index(
        "ix_inbound_unfinished",
        "phone",
        "received_at",
        postgresql_where=sa.text("status <> 'done'"),
    ),
)

# Written by the Rasa Twilio connector: one Twilio message per proactive text `ref`, whatever the
# retries, so a crash between sending and recording never texts an offer twice.
sms_sends = sa.Table(
    "sms_sends",
    metadata,
    sa.Column("ref", sa.Text, primary_key=True),
    sa.Column("phone", sa.Text, nullable=False),
    sa.Column("body_sha256", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # sending | sent | failed
    sa.Column("message_sid", sa.Text),
    sa.Column("error_code", sa.Text),
    sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
    sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
)

_mapped = False


def start_mappers() -> None:
    """Map the domain classes onto the tables (idempotent: once per process)."""
    global _mapped
    if _mapped:
        return
    mapper_registry.map_imperatively(model.Provider, providers)
    mapper_registry.map_imperatively(accounts.StaffUser, staff_users)
    mapper_registry.map_imperatively(model.Patient, patients)
    mapper_registry.map_imperatively(model.WaitlistEntry, waitlist_entries)
    offer_mapper = mapper_registry.map_imperatively(model.Offer, offers)
    mapper_registry.map_imperatively(
        model.Cancellation,
        cancellations,
        properties={
            "offers": relationship(
                offer_mapper, order_by=offers.c.id, lazy="selectin", cascade="all"
            )
        },
        exclude_properties=["events"],
    )

    # SQLAlchemy builds loaded objects without __init__; give each its own empty event list
    @sa.event.listens_for(model.Cancellation, "load")
    def _fresh_events(cancellation: model.Cancellation, _: object) -> None:
        cancellation.events = []

    _mapped = True
