"""Engine creation, and the embedded PostgreSQL used when no DATABASE_URL is set."""

from __future__ import annotations

import logging
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

log = logging.getLogger(__name__)


def sqlalchemy_url(database_url: str) -> str:
    """Accept postgres://, postgresql:// or postgresql+psycopg:// and always use psycopg 3."""
    url = make_url(database_url.replace("postgres://", "postgresql://", 1))
    if url.get_backend_name() != "postgresql":
        raise ValueError("DATABASE_URL must point to PostgreSQL")
    return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def create_engine(database_url: str, pool_size: int = 10) -> Engine:
    return sa.create_engine(
        sqlalchemy_url(database_url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        # error messages must never quote phone numbers or names from the statement's parameters
        hide_parameters=True,
        # short OLTP queries: parallel workers and JIT compilation cost more than they save
        # a lock wait is bounded, so a claim answers (or fails and is retried) within seconds
        connect_args={
            "options": "-c max_parallel_workers_per_gather=0 -c jit=off -c lock_timeout=10s",
            "connect_timeout": 5,
        },
    )


def empty_all_tables(engine: Engine) -> None:
    """Every table of the schema emptied, ids restarted, the breaker closed: a fresh clinic for
    the next simulator run or test, much faster than a new database."""
    from waitlist.adapters import orm  # imported here: the engine helpers above need no mapping

    tables = [t.name for t in orm.metadata.sorted_tables if t.name != "messaging_health"]
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        conn.execute(
            sa.text(
                "UPDATE messaging_health SET consecutive_failures = 0, paused_since = NULL,"
                " last_error = NULL"
            )
        )


def start_embedded_postgres(data_dir: str) -> str:
    """Start (or reuse) a PostgreSQL server whose files live under data_dir; return its URL.

    pgserver ships real PostgreSQL binaries in its wheel, so a newcomer needs nothing installed.
    The server keeps running after this process exits, so that the other processes can share it.
    """
    import pgserver  # imported here: only the embedded mode needs it

    path = Path(data_dir).resolve() / "postgres"
    path.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(path, cleanup_mode=None)
    uri = server.get_uri()
    log.info("embedded PostgreSQL ready")
    return uri
