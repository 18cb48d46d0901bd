"""Who calls the admin API: a bearer token or a client certificate, and the caller's role.

Tokens are configured by their SHA-256 only, and compared in constant time. A client
certificate subject is believed only from a TLS-terminating proxy the settings trust (by
its address), in the header the settings name; from anyone else the header is ignored.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any, Final

from serviceplatform.config import AdminSettings
from serviceplatform.errors import ConfigurationError, NotAuthenticated, NotAuthorized

OPERATOR: Final = "operator"
AUTHORITY_ADMIN: Final = "authority_admin"
SUPPLIER: Final = "supplier"
ROLES: Final = frozenset({OPERATOR, AUTHORITY_ADMIN, SUPPLIER})


@dataclass(frozen=True)
class Principal:
    name: str
    role: str
    authority_cvr: str = ""
    supplier: str = ""
    #: The CVR number of a supplier: the consumer systems it runs carry it.
    supplier_cvr: str = ""

    def require(self, *roles: str) -> None:
        if self.role not in roles:
            raise NotAuthorized(f"{self.role} may not do this")

    def may_administer(self, authority_cvr: str) -> bool:
        return self.role == OPERATOR or (
            self.role == AUTHORITY_ADMIN and self.authority_cvr == authority_cvr
        )

    @property
    def label(self) -> str:
        return f"{self.name} ({self.role})"


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


_HEX_DIGITS: Final = frozenset("0123456789abcdefABCDEF")


def principal_problems(settings: AdminSettings) -> list[str]:
    """Every reason the admin principals cannot be used, one line each naming the setting.

    ``config check`` and ``serve`` list them before any worker starts (a worker that met them
    first would fail with a traceback, as every other worker after it).
    """
    problems: list[str] = []
    for name, configured in settings.principals.items():
        at = f"admin.principals.{name}"
        if configured.role not in ROLES:
            problems.append(
                f"{at}.role {configured.role!r} is not a role: {', '.join(sorted(ROLES))}"
            )
        if configured.role == AUTHORITY_ADMIN and not configured.authority_cvr:
            problems.append(
                f"{at}.authority_cvr is empty: an authority_admin needs the CVR number of the "
                "authority it administers"
            )
        if configured.role == SUPPLIER and not (configured.supplier and configured.supplier_cvr):
            problems.append(f"{at}: a supplier needs supplier and supplier_cvr")
        digest = configured.token_sha256
        if digest and (len(digest) != 64 or not _HEX_DIGITS.issuperset(digest)):
            # A digest that is not 64 hex digits matches no token: the caller would only
            # ever get SP-601.
            problems.append(
                f"{at}.token_sha256 is not a SHA-256 in hex (64 digits): give the digest of "
                "the token, e.g. printf %s TOKEN | sha256sum"
            )
    return problems


class Authenticator:
    def __init__(self, settings: AdminSettings) -> None:
        self._settings = settings
        self._by_token: list[tuple[bytes, Principal]] = []
        self._by_subject: dict[str, Principal] = {}
        problems = principal_problems(settings)
        if problems:
            raise ConfigurationError(problems[0])
        for name, configured in settings.principals.items():
            principal = Principal(
                name,
                configured.role,
                configured.authority_cvr,
                configured.supplier,
                configured.supplier_cvr,
            )
            if configured.token_sha256:
                self._by_token.append((configured.token_sha256.lower().encode(), principal))
            if configured.cert_subject:
                self._by_subject[configured.cert_subject] = principal

    @property
    def trusted_proxies(self) -> frozenset[str]:
        """The addresses whose client-certificate and forwarded-host headers are believed."""
        return frozenset(self._settings.trusted_proxies)

    def authenticate(self, environ: dict[str, Any]) -> Principal:
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            digest = token_digest(token.strip()).encode()
            found: Principal | None = None
            for expected, candidate in self._by_token:
                # Every entry is compared, so timing does not tell which one matched.
                if hmac.compare_digest(expected, digest):
                    found = candidate
            if found is not None:
                return found
            raise NotAuthenticated("unknown token")
        header = self._settings.client_cert_subject_header
        if header and environ.get("REMOTE_ADDR") in self._settings.trusted_proxies:
            key = "HTTP_" + header.upper().replace("-", "_")
            subject = environ.get(key, "").strip()
            if subject:
                principal = self._by_subject.get(subject)
                if principal is None:
                    raise NotAuthenticated("the client certificate is not a known principal")
                return principal
        raise NotAuthenticated("send Authorization: Bearer <token>")
