"""Run the Alembic migrations from code (start-up, tests, the launcher)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

ALEMBIC_INI = Path(__file__).resolve().parents[2] / "alembic.ini"


def upgrade(database_url: str) -> None:
    config = Config(str(ALEMBIC_INI))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")


def head_revision() -> str | None:
    """The newest migration in this code base (what a ready database must be at)."""
    from alembic.script import ScriptDirectory

    config = Config(str(ALEMBIC_INI))
    return ScriptDirectory.from_config(config).get_current_head()
