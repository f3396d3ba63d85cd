"""One small engine for the connector's own tables (the inbox and the send ledger).

The connector runs in Rasa's venv (SQLAlchemy 1.4, psycopg2); each statement is one short
transaction, so nothing is held between a database call and a network call.
"""

from __future__ import annotations

from typing import Any


class Statements:
    def __init__(self, database_url: str) -> None:
        import sqlalchemy

        self._sql = sqlalchemy
        # create_engine doesn't connect, so Rasa starts even while the database is down
        self._engine = sqlalchemy.create_engine(
            database_url,
            pool_pre_ping=True,
            pool_size=2,
            max_overflow=4,
            future=True,
            hide_parameters=True,  # error messages must not quote a phone number or a text
        )

    def run(self, statement: str, **params: Any) -> list[tuple]:
        """One statement in its own transaction; the rows it returns, if any."""
        with self._engine.begin() as connection:
            result = connection.execute(self._sql.text(statement), params)
            return list(result.fetchall()) if result.returns_rows else []

    def dispose(self) -> None:
        self._engine.dispose()
