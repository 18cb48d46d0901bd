"""The two SF1601 calls of SF2250's SF1601 route, token-secured through the outbound seam.

One ``TokenCache`` per platform process (built on first use from the ``sts`` and ``sf1601``
peers and the certificate store): tokens per (authority, entity ID, certificate) are
shared by every call, refreshed once under concurrency, renewed once on a 401. The
agreement's outward certificate is both the token's ``UseKey`` and the TLS identity.

``KombiPostAfsend`` is sent as not idempotent (the digest does not say whether SF1601
refuses a repeated ``messageUUID``): the seam repeats it only when it never left, and a
caller's retry after a lost answer sends the same ``messageUUID``, kept in the sending
ledger. ``x-TransaktionsId`` is the ``messageUUID`` there (as VAL does), a fresh UUID for
PostForespoerg.
"""

from __future__ import annotations

import threading
import uuid
from typing import Final

from integrations.sf2250.messages import Subject
from integrations.sf2250.sf1601.mapping import (
    ENTITY_KOMBIPOSTAFSEND,
    ENTITY_POSTFORESPOERG,
    KOMBI_PATH,
    KombiReceipt,
    forespoerg_path,
    parse_forespoerg,
    parse_kombi_response,
    transaction_headers,
)
from integrations.sf2250.sf1601.memo import NemSmsMemo, kombi_request
from serviceplatform.call import PlatformCall
from serviceplatform.errors import CertificateUnavailable
from serviceplatform.outbound.base import OutboundRequest
from serviceplatform.outbound.kombi_sts import TokenIssuer, TokenScope
from serviceplatform.outbound.token_credential import TokenCache
from serviceplatform.platform import Platform
from serviceplatform.routing.model import Route

#: Peer names in ``[peers]``: the STS, and the SF1601 host (which also serves the exchange).
STS_PEER: Final = "sts"
PEER: Final = "sf1601"
_XML: Final = {"Content-Type": "application/xml;charset=UTF-8", "Accept": "application/xml"}
_JSON: Final = {"Accept": "application/json"}


class Sf1601Client:
    """PostForespoerg and KombiPostAfsend for one platform; thread-safe."""

    def __init__(self, platform: Platform, budget_seconds: float | None = None) -> None:
        self.platform = platform
        self.budget_seconds = budget_seconds
        self._cache: TokenCache | None = None
        self._lock = threading.Lock()

    @property
    def tokens(self) -> TokenCache:
        if self._cache is None:
            with self._lock:
                if self._cache is None:
                    platform = self.platform
                    issuer = TokenIssuer(
                        platform.transport(STS_PEER),
                        lambda scope: platform.transport(PEER),
                        platform.certificates,
                    )
                    self._cache = TokenCache(issuer, platform.certificates)
        return self._cache

    def subscribed(self, call: PlatformCall, route: Route, subject: Subject) -> bool:
        """PostForespoerg (NemSMS): is ``subject`` registered for NemSMS?"""
        request = OutboundRequest(
            "GET",
            forespoerg_path(subject),
            headers={**_JSON, **transaction_headers(str(uuid.uuid4()), self.platform.clock())},
        )
        scope = _scope(route, ENTITY_POSTFORESPOERG)
        response = self.platform.transport(PEER).send(
            request, credential=self.tokens.credential(scope)
        )
        call.upstream_status = response.status
        return parse_forespoerg(response.body)

    def send_sms(self, call: PlatformCall, route: Route, memo: NemSmsMemo) -> KombiReceipt:
        """KombiPostAfsend with KombiValgKode NemSMS: the MeMo ``memo``."""
        request = OutboundRequest(
            "POST",
            KOMBI_PATH,
            kombi_request(memo),
            {**_XML, **transaction_headers(memo.message_uuid, self.platform.clock())},
            budget_seconds=self.budget_seconds,
            idempotent=False,
        )
        scope = _scope(route, ENTITY_KOMBIPOSTAFSEND)
        response = self.platform.transport(PEER).send(
            request, credential=self.tokens.credential(scope)
        )
        call.upstream_status = response.status
        return parse_kombi_response(response.body)


def _scope(route: Route, entity_id: str) -> TokenScope:
    if route.cert_alias is None:
        # The token is bound to a certificate: without one there is nothing to ask for.
        raise CertificateUnavailable(f"agreement {route.agreement.uuid} names no certificate")
    return TokenScope(route.agreement.authority_cvr, entity_id, route.cert_alias)
