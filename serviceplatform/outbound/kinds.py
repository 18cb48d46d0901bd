"""Peer kinds by name: which transport a ``[peers.<name>]`` section gets, as an alias table.

As kombu names its transports, a kind is a short name bound to ``module:factory``; the
factory is imported only when a peer of that kind is opened. The core's table holds the
core's kinds; an integration adds its own through its ``Integration.peer_kinds``, merged
by ``serviceplatform.registry.peer_kinds``. A factory takes the peer's name, its settings
(paths already resolved) and the certificate store, and returns a ``Transport``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Protocol

if TYPE_CHECKING:
    from serviceplatform.config import PeerSettings
    from serviceplatform.outbound.base import Transport
    from serviceplatform.outbound.certstore import CertificateStore

#: The kind of a peer section that names none (``PeerSettings.kind``'s default).
DEFAULT_PEER_KIND: Final = "oiorest"

#: The core's peer kinds: kind -> ``module:factory``.
CORE_PEER_KINDS: Final[dict[str, str]] = {
    "oiorest": "serviceplatform.outbound.oiorest:open_oiorest",
}


class PeerFactory(Protocol):
    """What a kind's ``module:factory`` names."""

    def __call__(
        self, name: str, settings: PeerSettings, certificates: CertificateStore | None
    ) -> Transport: ...
