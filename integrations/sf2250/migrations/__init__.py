"""SF2250/SF1600 schema revisions (Alembic scripts; ``INTEGRATION.migrations``)."""
