"""Alembic's entry for the fleet's schema: run by committer.fleet.schema.upgrade with the connection given."""

from alembic import context

from committer.fleet.db import Base

connection = context.config.attributes.get("connection")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
