"""Print an admin URL of a PostgreSQL server the test suites may create databases on.

TEST_DATABASE_ADMIN_URL wins; else a server on 127.0.0.1:5432 with trust auth; else an embedded
server under .data/test-postgres (so the tests need nothing installed).
"""

from __future__ import annotations

import os
import sys

import psycopg

LOCAL = "postgresql://postgres@127.0.0.1:5432/postgres"


def answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def main() -> None:
    url = os.environ.get("TEST_DATABASE_ADMIN_URL")
    if url:
        print(url)
        return
    if answers(LOCAL):
        print(LOCAL)
        return
    sys.path.insert(0, "backend")
    from waitlist.adapters.database import start_embedded_postgres

    print(start_embedded_postgres(os.path.join(".data", "test-postgres")))


if __name__ == "__main__":
    main()
