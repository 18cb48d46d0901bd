"""Transports to the message distributor (Beskedfordeler): a file drop and AMQP.

``distributor_from_settings`` picks one by ``[distributor] transport``. The AMQP transport (and
so pika) is imported only when configured. Details: ``docs/distribution.md``.
"""

from __future__ import annotations

from serviceplatform.distribution.base import (
    KUVERT_NS,
    SAGDOK_NS,
    STATUS_OK,
    Distributor,
    DistributorBase,
    MemoryDistributor,
    OutgoingMessage,
)
from serviceplatform.distribution.factory import distributor_from_settings
from serviceplatform.distribution.file_drop import FileDropDistributor

__all__ = [
    "KUVERT_NS",
    "SAGDOK_NS",
    "STATUS_OK",
    "Distributor",
    "DistributorBase",
    "FileDropDistributor",
    "MemoryDistributor",
    "OutgoingMessage",
    "distributor_from_settings",
]
