"""A scratch database holding an `events` table shaped like the one Rasa's SQLTrackerStore creates."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url

from launcher.test_database import LOCAL, answers
from tests.review.tracker_rows import EVENTS_DDL


def _admin_url() -> str:
    url = os.environ.get("TEST_DATABASE_ADMIN_URL")
    if url:
        return url
    if answers(LOCAL):
        return LOCAL
    # no server on this machine: the same embedded one the other suites fall back to
    from waitlist.adapters.database import start_embedded_postgres

    return start_embedded_postgres(os.path.join(".data", "test-postgres"))


@pytest.fixture(scope="session")
def admin_url() -> str:
    return _admin_url()


@pytest.fixture
def tracker_db(admin_url: str) -> Iterator[str]:
    """A fresh database with an empty `events` table; its URL."""
    name = f"review_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(EVENTS_DDL)
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
