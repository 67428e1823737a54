"""The fleet's schema, managed by Alembic (its one home): `upgrade` brings any database to the newest
revision, and is run by every fleet process before it starts, so a new worker never meets an old schema."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from committer.fleet.db import Engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _config(connection: object | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine) -> None:
    """Apply every revision the database lacks (one transaction; a second process waits on the first)."""
    with engine.begin() as connection:
        command.upgrade(_config(connection), "head")


def current(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()


def revise(engine: Engine, message: str) -> None:
    """Write a new revision from the difference between the tables in db.py and the database (developers)."""
    with engine.begin() as connection:
        command.revision(_config(connection), message=message, autogenerate=True)
