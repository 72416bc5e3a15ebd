"""Alembic migrations of the PostgreSQL store (run programmatically by :mod:`..schema`)."""
