"""KOMBIT's REST token flow: an STS issue request, then the exchange for an access token.

The first two of the three steps in ``../shared/docs/SF1601.md`` §2 (the third, the call
itself, is the seam's with a ``TokenCredential``):

1. ``POST {sts}/runtime/api/rest/wstrust/v1/issue`` over mutual TLS, JSON with the
   authority's CVR as ``AnvenderKontekst.Cvr``, the platform's certificate (base64 DER, one
   line) as ``UseKey`` and the peer's entity ID as ``AppliesTo``; the answer's
   ``RequestedSecurityToken.Assertion`` is a base64 SAML holder-of-key assertion;
2. ``POST {service host}/service/AccessTokenService_1/token`` over mutual TLS with the same
   certificate, form field ``saml-token``; the answer is JSON ``access_token``,
   ``token_type`` (``Holder-of-key``) and ``expires_in`` (seconds).

Both calls go through the seam, so their library failures are already platform errors;
this module turns them into the token flow's own codes (SP-440..SP-445), because an STS
that is down must not read as the peer being down. The certificate errors (SP-420/421)
pass unchanged. Token values are never logged and never in an error's detail.

The paths are settings (``StsSettings``): the digest marks no path uncertain, but KOMBIT
moved the STS host once (2025) and may move the paths too.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlencode

from cryptography.hazmat.primitives.serialization import Encoding

from serviceplatform.errors import (
    ServicePlatformError,
    TokenAnswerUnreadable,
    TokenExchangeRefused,
    TokenExchangeUnavailable,
    TokenRequestRefused,
    TokenServiceUnavailable,
    UpstreamBadResponse,
    UpstreamError,
)
from serviceplatform.outbound.base import OutboundRequest, Transport
from serviceplatform.outbound.certstore import CertificateStore
from serviceplatform.outbound.credentials import ClientCertificate
from serviceplatform.outbound.translate import RETRIED

log = logging.getLogger(__name__)

SAML_TOKEN_TYPE: Final = "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0"
WSTRUST_ISSUE: Final = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/Issue"
WSTRUST_PUBLIC_KEY: Final = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/PublicKey"
#: What the access-token service calls its tokens (and the ``Authorization`` scheme).
HOLDER_OF_KEY: Final = "Holder-of-key"


@dataclass(frozen=True)
class StsSettings:
    """Where the two token steps are sent (paths below their peers' base URLs)."""

    issue_path: str = "/runtime/api/rest/wstrust/v1/issue"
    exchange_path: str = "/service/AccessTokenService_1/token"


@dataclass(frozen=True)
class TokenScope:
    """What a token is issued for: one authority, one service, one certificate."""

    authority_cvr: str
    #: The peer's entity ID (``AppliesTo``), e.g. ``http://entityid.kombit.dk/service/...``.
    entity_id: str
    #: The alias of the platform's certificate in the store (``UseKey`` and mutual TLS).
    certificate_alias: str


@dataclass(frozen=True)
class AccessToken:
    """An access token and its lifetime in seconds as the exchange answered it."""

    #: Never in a repr: reprs end up in log lines.
    value: str = field(repr=False)
    expires_in: float


class TokenIssuer:
    """Runs steps 1 and 2 for a ``TokenScope``; thread-safe (the transports are)."""

    def __init__(
        self,
        sts: Transport,
        exchange: Callable[[TokenScope], Transport],
        certificates: CertificateStore,
        settings: StsSettings | None = None,
    ) -> None:
        """``exchange`` gives the transport of a scope's access-token service: the host of
        the service itself (``exttest.serviceplatformen.dk``), hence a function of the scope."""
        self._sts = sts
        self._exchange = exchange
        self._certs = certificates
        self._settings = settings or StsSettings()

    def issue(self, scope: TokenScope) -> AccessToken:
        """A fresh access token for ``scope`` (SP-440..SP-445 on failure)."""
        assertion = self.saml_token(scope)
        return self.exchange(scope, assertion)

    def saml_token(self, scope: TokenScope) -> str:
        """Step 1: the base64 SAML assertion the STS issues for ``scope``."""
        body = json.dumps(self.issue_request(scope)).encode()
        request = OutboundRequest(
            "POST",
            self._settings.issue_path,
            body,
            {"Content-Type": "application/json", "Accept": "application/json"},
        )
        credential = ClientCertificate(scope.certificate_alias)
        try:
            answer = self._sts.send(request, credential=credential)
        except UpstreamError as exc:
            error = _failure(exc, TokenServiceUnavailable, TokenRequestRefused, scope, True)
            raise error from exc
        try:
            token = json.loads(answer.body)["RequestedSecurityToken"]["Assertion"]
            if not isinstance(token, str) or not token:
                raise TypeError("no assertion")
            base64.b64decode(token, validate=True)
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise TokenAnswerUnreadable(f"STS answer for {_scope_text(scope)}") from exc
        log.info("STS issued a SAML token for %s", _scope_text(scope))
        return token

    def issue_request(self, scope: TokenScope) -> dict[str, object]:
        """The JSON of the STS issue request (digest §2, step 1)."""
        der = self._certs.certificate(scope.certificate_alias).public_bytes(Encoding.DER)
        return {
            "TokenType": SAML_TOKEN_TYPE,
            "RequestType": WSTRUST_ISSUE,
            "KeyType": WSTRUST_PUBLIC_KEY,
            "AnvenderKontekst": {"Cvr": scope.authority_cvr},
            "UseKey": base64.b64encode(der).decode("ascii"),
            "AppliesTo": {"EndpointReference": {"Address": scope.entity_id}},
            "OnBehalfOf": None,
        }

    def exchange(self, scope: TokenScope, assertion: str) -> AccessToken:
        """Step 2: the access token for the SAML ``assertion``."""
        request = OutboundRequest(
            "POST",
            self._settings.exchange_path,
            urlencode({"saml-token": assertion}).encode("ascii"),
            {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
        )
        credential = ClientCertificate(scope.certificate_alias)
        try:
            answer = self._exchange(scope).send(request, credential=credential)
        except UpstreamError as exc:
            # No detail from the answer: a refusal may quote the SAML token it was sent.
            error = _failure(exc, TokenExchangeUnavailable, TokenExchangeRefused, scope, False)
            raise error from exc
        try:
            data = json.loads(answer.body)
            value = data["access_token"]
            expires_in = float(data["expires_in"])
            kind = data.get("token_type", HOLDER_OF_KEY)
            if not isinstance(value, str) or not value or not isinstance(kind, str):
                raise TypeError("no access token")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise TokenAnswerUnreadable(f"access-token answer for {_scope_text(scope)}") from exc
        if kind.lower() != HOLDER_OF_KEY.lower():
            raise TokenAnswerUnreadable(f"token type {kind[:40]!r} for {_scope_text(scope)}")
        log.info("access token for %s, valid %.0f s", _scope_text(scope), expires_in)
        return AccessToken(value, expires_in)


def _scope_text(scope: TokenScope) -> str:
    return f"CVR {scope.authority_cvr}, {scope.entity_id}"


def _failure(
    exc: UpstreamError,
    down: type[ServicePlatformError],
    refused: type[ServicePlatformError],
    scope: TokenScope,
    quote: bool,
) -> ServicePlatformError:
    # TLS failures count as "down": the platform's certificate is checked before any I/O
    # (SP-420/421), so a failed handshake is the service's side or the network.
    said = f" {exc.detail}" if quote and exc.detail else ""
    if isinstance(exc, UpstreamBadResponse):
        return TokenAnswerUnreadable(f"{_scope_text(scope)}: {exc.code}{said}")
    if isinstance(exc, RETRIED) or exc.status is None or exc.status >= 500:
        return down(f"{_scope_text(scope)}: {exc.code}{said}")
    return refused(f"{_scope_text(scope)}: HTTP {exc.status}{said}")
