"""Backend test fixtures: a real PostgreSQL database created for this run, and a controllable clock."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
from sqlalchemy.engine import Engine, make_url

from tests.backend.builders import START  # 10:00 New York, inside contact hours
from waitlist.adapters import database, migrations, orm
from waitlist.adapters.messenger import RecordingMessenger
from waitlist.config import Settings
from waitlist.service_layer.clock import FakeClock
from waitlist.service_layer.unit_of_work import UnitOfWork

ADMIN_URL = os.environ.get(
    "TEST_DATABASE_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _admin(sql: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh database for this test run, migrated to head, dropped at the end."""
    name = f"waitlist_test_{uuid.uuid4().hex[:10]}"
    _admin(f'CREATE DATABASE "{name}"')
    url = make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        migrations.upgrade(url)
        orm.start_mappers()
        yield url
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = database.create_engine(database_url, pool_size=30)
    yield engine
    engine.dispose()


@pytest.fixture
def clean_db(engine: Engine) -> Engine:
    database.empty_all_tables(engine)
    return engine


@pytest.fixture
def uow_factory(clean_db: Engine) -> Callable[[], UnitOfWork]:
    session_factory = UnitOfWork.session_factory_for(clean_db)
    return lambda: UnitOfWork(session_factory)


@pytest.fixture
def uow(uow_factory: Callable[[], UnitOfWork]) -> UnitOfWork:
    return uow_factory()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def settings() -> Settings:
    return Settings.from_env({"CLINIC_TIMEZONE": "America/New_York"})


@pytest.fixture
def messenger() -> RecordingMessenger:
    return RecordingMessenger()
