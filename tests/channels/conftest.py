"""Fixtures for the Twilio SMS channel tests."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from twilio_sms_testkit import FakeTwilio


@pytest_asyncio.fixture
async def fake_twilio() -> AsyncIterator[FakeTwilio]:
    server = FakeTwilio()
    await server.start()
    yield server
    await server.stop()


ADMIN_URL = os.environ.get(
    "TEST_DATABASE_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)

# The two tables the channel writes, as the backend's migrations leave them (0001 created
# `inbound_messages`, 0004 added the inbox columns and `sms_sends`). Plain SQL: the Rasa venv has
# neither the backend's code nor alembic.
CHANNEL_TABLES = """
CREATE TABLE inbound_messages (
    message_sid text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    phone text,
    body text,
    num_media integer,
    status text NOT NULL DEFAULT 'done',
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    lease_until timestamptz,
    last_error text,
    done_at timestamptz,
    CONSTRAINT pk_inbound_messages PRIMARY KEY (message_sid)
);
CREATE INDEX ix_inbound_unfinished ON inbound_messages (phone, received_at)
    WHERE status <> 'done';
CREATE TABLE sms_sends (
    ref text NOT NULL,
    phone text NOT NULL,
    body_sha256 text NOT NULL,
    status text NOT NULL,
    message_sid text,
    error_code text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_sms_sends PRIMARY KEY (ref)
);
"""


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database holding the backend's `inbound_messages` and `sms_sends` tables; dropped
    afterwards."""
    import psycopg2
    from sqlalchemy.engine import make_url

    try:
        admin = psycopg2.connect(ADMIN_URL, connect_timeout=3)
    except psycopg2.OperationalError as error:
        pytest.skip(f"PostgreSQL is not reachable for the inbox and ledger tests: {error}")
    admin.autocommit = True
    name = f"twilio_sms_test_{uuid.uuid4().hex[:12]}"
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    url = make_url(ADMIN_URL).set(database=name)
    database_url = url.render_as_string(hide_password=False)
    connection = psycopg2.connect(database_url)
    with connection, connection.cursor() as cursor:
        cursor.execute(CHANNEL_TABLES)
    connection.close()
    try:
        yield database_url
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
