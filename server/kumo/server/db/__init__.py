"""Persistence: SQLAlchemy models, the transaction runner and Alembic migrations."""
