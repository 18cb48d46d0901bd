"""OOTS schema revisions (Alembic scripts; ``INTEGRATION.migrations``)."""
