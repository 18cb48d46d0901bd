"""The administration API and web page (docs/admin-api.md), mounted at ``/admin``."""
