"""Alembic's environment: migrate over the connection :func:`..schema.upgrade` hands in.

Never run from the ``alembic`` command line: ``runbook store upgrade`` is the way in.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
with context.begin_transaction():
    context.run_migrations()
