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


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database holding the backend's `inbound_messages` table; dropped afterwards."""
    import psycopg2
    from sqlalchemy.engine import make_url

    try:
        admin = psycopg2.connect(ADMIN_URL, connect_timeout=3)
    except psycopg2.OperationalError as error:
        pytest.skip(f"PostgreSQL is not reachable for the dedup tests: {error}")
    admin.autocommit = True
    name = f"twilio_sms_test_{uuid.uuid4().hex[:12]}"
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    url = make_url(ADMIN_URL).set(database=name)
    database_url = url.render_as_string(hide_password=False)
    connection = psycopg2.connect(database_url)
    with connection, connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE inbound_messages ("
            "message_sid text PRIMARY KEY, received_at timestamptz NOT NULL DEFAULT now())"
        )
    connection.close()
    try:
        yield database_url
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
