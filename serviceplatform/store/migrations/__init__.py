"""Alembic migrations of the platform's schema; run them with ``Database.upgrade()``."""
