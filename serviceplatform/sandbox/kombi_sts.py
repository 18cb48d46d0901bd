"""A simulated KOMBIT STS: the REST issue endpoint over mutual TLS, plus its test hooks.

``POST /runtime/api/rest/wstrust/v1/issue`` (``../shared/docs/SF1601.md`` §2, step 1) takes
the JSON issue request and answers a signed SAML 2.0 holder-of-key assertion (base64) for the
calling certificate, minted with the sandbox STS key (``client.token_minter``). It refuses
(HTTP 400, JSON ``error``) a ``UseKey`` that is not the calling certificate, a CVR it does not
know (``authorities``; None: any 8 digits) and an ``AppliesTo`` that is not one of its
entity IDs. What it issued is written to ``IssuedTokens``, which the simulated access-token
service (``sf1601_service.py``) reads, as KOMBIT's services trust their STS.

Hooks (``kombi_hooks.py``): ``requests``, ``faults`` (target ``issue``: 503 or ``reset`` is
"STS down"), ``lifetime`` (of the SAML tokens, default 8 h).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Final
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, load_pem_private_key
from lxml import etree

from serviceplatform.client.token_minter import mint_assertion
from serviceplatform.sandbox.httpserver import (
    QuietHandler,
    ServerGroup,
    ServerThread,
    ThreadedServer,
    server_tls_context,
)
from serviceplatform.sandbox.kombi_hooks import PeerState, peer_hooks
from serviceplatform.sandbox.pki import STS_ISSUER

ISSUE_PATH: Final = "/runtime/api/rest/wstrust/v1/issue"
ENTITY_KOMBIPOSTAFSEND: Final = "http://entityid.kombit.dk/service/kombipostafsend/1"
ENTITY_POSTFORESPOERG: Final = "http://entityid.kombit.dk/service/postforespoerg/1"
SF1601_ENTITY_IDS: Final = (ENTITY_KOMBIPOSTAFSEND, ENTITY_POSTFORESPOERG)
SAML_LIFETIME: Final = 8 * 3600.0
_CVR: Final = re.compile(r"\d{8}")


def fingerprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


@dataclass(frozen=True)
class Grant:
    """What a token was issued for, and until when (``time.time()`` seconds)."""

    cvr: str
    entity_id: str
    #: SHA-256 of the DER certificate the token is bound to (holder-of-key).
    certificate: str
    expires_at: float


class IssuedTokens:
    """SAML assertions by ID and access tokens by value, shared by the simulated peers."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.assertions: dict[str, Grant] = {}
        self.access_tokens: dict[str, Grant] = {}
        #: Counters: how many the peers issued (tests: "one token for many calls").
        self.assertions_issued = 0
        self.access_tokens_issued = 0


class SimulatedSts(ServerGroup):
    """The STS (HTTPS, client certificate required) and its hooks (HTTP, loopback)."""

    def __init__(
        self,
        *,
        server_cert: Path,
        server_key: Path,
        client_ca: Path,
        sts_cert: Path,
        sts_key: Path,
        issued: IssuedTokens | None = None,
        authorities: Iterable[str] | None = None,
        entity_ids: Iterable[str] = SF1601_ENTITY_IDS,
        host: str = "127.0.0.1",
        port: int = 0,
        control_port: int = 0,
    ) -> None:
        self.issued = issued or IssuedTokens()
        self.state = PeerState(("issue",), SAML_LIFETIME, 100_000)
        key = load_pem_private_key(sts_key.read_bytes(), password=None)
        if not isinstance(key, RSAPrivateKey):
            raise ValueError("the sandbox STS key must be an RSA key")
        handler = type(
            "StsHandler",
            (_StsHandler,),
            {
                "state": self.state,
                "issued": self.issued,
                "sts_key": key,
                "sts_cert": x509.load_pem_x509_certificate(sts_cert.read_bytes()),
                "authorities": None if authorities is None else frozenset(authorities),
                "entity_ids": frozenset(entity_ids),
            },
        )
        context = server_tls_context(server_cert, server_key, client_ca)
        self._host = host
        self._server = ServerThread(
            ThreadedServer((host, port), handler, ssl_context=context), "sandbox-sts"
        )
        self._control = ServerThread(
            ThreadedServer(("127.0.0.1", control_port), peer_hooks(self.state, self.stats)),
            "sandbox-sts-hooks",
        )
        super().__init__(self._server, self._control)

    @property
    def base_url(self) -> str:
        return f"https://{self._host}:{self._server.port}"

    @property
    def control_url(self) -> str:
        return f"http://127.0.0.1:{self._control.port}/_sandbox"

    def stats(self) -> dict[str, int]:
        with self.state.lock:
            received = self.state.requests_received
        return {
            "connections_accepted": self._server.server.connections_accepted,
            "requests_received": received,
            "assertions_issued": self.issued.assertions_issued,
        }


def calling_certificate(handler: QuietHandler) -> x509.Certificate | None:
    der = handler.connection.getpeercert(binary_form=True)
    return x509.load_der_x509_certificate(der) if der else None


class _StsHandler(QuietHandler):
    state: ClassVar[PeerState]
    issued: ClassVar[IssuedTokens]
    sts_key: ClassVar[RSAPrivateKey]
    sts_cert: ClassVar[x509.Certificate]
    authorities: ClassVar[frozenset[str] | None]
    entity_ids: ClassVar[frozenset[str]]

    def _serve(self) -> None:
        body = self.read_body()
        if body is None:
            return
        caller = calling_certificate(self)
        subject = caller.subject.rfc4514_string() if caller is not None else None
        if self.answer_injected(self.state.record(self, body, "issue", subject)):
            return
        if urlsplit(self.path).path != ISSUE_PATH or self.command != "POST":
            self.send_json(404, {"error": "no such resource"})
            return
        try:
            answer = self._issue(json.loads(body), caller)
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            self.send_json(400, {"error": str(exc)[:200]})
            return
        self.send_json(200, answer)

    do_GET = do_POST = do_PUT = do_DELETE = _serve  # noqa: N815 - dispatch names

    def _issue(self, request: Any, caller: x509.Certificate | None) -> dict[str, Any]:
        if caller is None:
            raise ValueError("no client certificate")
        if request.get("TokenType", "").rsplit("#", 1)[-1] != "SAMLV2.0":
            raise ValueError("TokenType must be the SAML 2.0 token profile")
        if not str(request.get("KeyType", "")).endswith("/PublicKey"):
            raise ValueError("KeyType must be PublicKey (holder-of-key)")
        der = base64.b64decode(request["UseKey"], validate=True)
        caller_der = caller.public_bytes(Encoding.DER)
        if der != caller_der:
            raise ValueError("UseKey is not the certificate the request came with")
        cvr = request["AnvenderKontekst"]["Cvr"]
        if not isinstance(cvr, str) or not _CVR.fullmatch(cvr):
            raise ValueError("AnvenderKontekst.Cvr must be 8 digits")
        if self.authorities is not None and cvr not in self.authorities:
            raise ValueError(f"CVR {cvr} has no agreement with the service")
        entity_id = request["AppliesTo"]["EndpointReference"]["Address"]
        if entity_id not in self.entity_ids:
            raise ValueError(f"AppliesTo {str(entity_id)[:100]!r} is not a known entity ID")
        with self.state.lock:
            lifetime = self.state.lifetime
        now = datetime.now(UTC)
        assertion = mint_assertion(
            sts_key=self.sts_key,
            sts_cert=self.sts_cert,
            issuer=STS_ISSUER,
            audience=entity_id,
            authority_cvr=cvr,
            holder_cert=caller,
            now=now,
            ttl=timedelta(seconds=lifetime),
        )
        grant = Grant(cvr, entity_id, fingerprint(caller_der), time.time() + lifetime)
        with self.issued.lock:
            self.issued.assertions[str(assertion.get("ID"))] = grant
            self.issued.assertions_issued += 1
        expires = now + timedelta(seconds=lifetime)
        return {
            "RequestedSecurityToken": {
                "Assertion": base64.b64encode(etree.tostring(assertion)).decode("ascii")
            },
            "Lifetime": {
                "Created": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "Expires": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
            "TokenType": request["TokenType"],
        }
