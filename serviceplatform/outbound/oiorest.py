"""The ``oiorest`` peer kind: REST over HTTPS, by default with mutual TLS (the NemSMS register).

An OIOREST peer needs nothing beyond the seam's ``HttpTransport``: the client certificate
comes with each call's credential (``ClientCertificate``), and a peer's error body (NemSMS's
``dkal:Fejl``) is read by the ``answer_check`` its integration puts on the requests. No size
limit applies to the answers, as before the seam.

Retrying connection failures, timeouts and 5xx is safe because OIOREST's PUTs and GETs are
idempotent (SPEC §3.2: at least once).
"""

from __future__ import annotations

from serviceplatform.config import PeerSettings
from serviceplatform.outbound.certstore import CertificateStore
from serviceplatform.outbound.transport import HttpTransport


def open_oiorest(
    name: str, settings: PeerSettings, certificates: CertificateStore | None
) -> HttpTransport:
    """The transport of the OIOREST peer ``name`` (the ``oiorest`` entry of the kinds)."""
    return HttpTransport(settings, certificates, peer=name)
