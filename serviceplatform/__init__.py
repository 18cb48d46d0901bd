"""Serviceplatform: SOAP + STS token in, certificate-secured protocols out.

The core package knows nothing of NemSMS or OOTS; integrations plug in through
``serviceplatform.registry``.
"""

__version__ = "0.1.0"
