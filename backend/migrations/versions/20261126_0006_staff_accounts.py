"""staff accounts and console sessions; fills entered in the practice's schedule; call-backs done

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 19:30:00
"""

from alembic import op
import sqlalchemy as sa


revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "staff_users",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("username", sa.Text, nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
        sa.Column("locked_until", TS),
        sa.Column("api_token_hash", sa.Text),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("disabled_at", TS),
        sa.CheckConstraint("role IN ('front_desk', 'admin')", name=op.f("ck_staff_users_staff_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_users")),
        sa.UniqueConstraint("username", name=op.f("uq_staff_users_username")),
        sa.UniqueConstraint("api_token_hash", name=op.f("uq_staff_users_api_token_hash")),
    )
    op.create_table(
        "staff_sessions",
        sa.Column("token_hash", sa.Text, nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("csrf_token", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["staff_users.id"],
            name=op.f("fk_staff_sessions_user_id_staff_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_staff_sessions")),
    )
    op.create_index(op.f("ix_staff_sessions_expires_at"), "staff_sessions", ["expires_at"])
    op.create_table(
        "callbacks_done",
        sa.Column("handoff_event_id", sa.BigInteger, nullable=False),
        sa.Column("done_at", TS, nullable=False),
        sa.Column("done_by", sa.Text, nullable=False),
        sa.Column("note", sa.Text),
        sa.PrimaryKeyConstraint("handoff_event_id", name=op.f("pk_callbacks_done")),
    )
    op.add_column("cancellations", sa.Column("schedule_entered_at", TS))
    op.add_column("cancellations", sa.Column("schedule_entered_by", sa.Text))


def downgrade() -> None:
    op.drop_table("callbacks_done")
    op.drop_column("cancellations", "schedule_entered_by")
    op.drop_column("cancellations", "schedule_entered_at")
    op.drop_table("staff_sessions")
    op.drop_table("staff_users")
