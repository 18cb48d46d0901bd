"""OOTS evidence requests over eDelivery AS4 (not yet built: declares no services)."""

from serviceplatform.integration import Integration

INTEGRATION = Integration(name="oots", roles={}, services=())
