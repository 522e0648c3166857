"""Alembic environment: migrations run on the connection the service hands over (see database.upgrade)."""

from alembic import context

from edge_service.database import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
