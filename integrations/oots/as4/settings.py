"""The settings of the native AS4 access point, and the objects they open.

The ``[oots.as4]`` table of the OOTS settings (``OotsSettings.as4``), and an authority's own
values under ``[oots.requesters.<CVR>.as4]`` (``As4AuthoritySettings``) for an authority whose
``gateway = "as4"``; ``for_authority`` lays them over the platform's:

.. code-block:: toml

    [oots.as4]
    party_id = "AP_DK_01"                     # our access point's ebMS party id
    signing_alias = "as4-sign"                # certificate store alias (key + certificate)
    decryption_alias = ""                     # empty: the signing pair
    receive_path = "/oots/as4"                # where partners push; empty: not mounted

    [oots.as4.partners.AP_DE_01]              # static partners: OOTS 1.x uses no SMP
    endpoint_url = "https://ap.example.de/as4"
    signing_cert = "partners/AP_DE_01.pem"    # verifies their messages and receipts
    encryption_cert = ""                      # empty: the signing certificate
    ca_cert = "partners/tls-ca.pem"           # TLS trust for endpoint_url; empty: public roots

    [oots.requesters.29189854]
    gateway = "as4"
    [oots.requesters.29189854.as4]            # each field left empty: [oots.as4]'s
    party_id = "AP_DK_02"
    signing_alias = "as4-sign-b"              # the keys come as a whole (see for_authority)

``local_access_point`` reads the keys from the certificate store (checked usable: present,
matching, valid, private), ``partners`` the partners' certificates; every problem is a
``ConfigurationError`` naming the setting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from integrations.oots.as4.encryption import DecryptionKey
from integrations.oots.as4.model import OOTS_PARTY_TYPE
from integrations.oots.as4.sender import As4Partner, LocalAccessPoint
from integrations.oots.as4.signature import SigningKey
from integrations.oots.as4.transport import HttpTarget
from serviceplatform.errors import ConfigurationError, ServicePlatformError
from serviceplatform.outbound.certstore import CertificateStore
from serviceplatform.outbound.urls import is_http_url


@dataclass
class As4PartnerSettings:
    """One partner access point (``[oots.as4.partners.<party id>]``)."""

    endpoint_url: str = ""
    signing_cert: str = ""
    encryption_cert: str = ""
    ca_cert: str = ""
    party_type: str = OOTS_PARTY_TYPE
    timeout_seconds: float = 60.0


@dataclass
class As4Settings:
    """The authority's own AS4 access point (``[oots.as4]``)."""

    party_id: str = ""
    party_type: str = OOTS_PARTY_TYPE
    signing_alias: str = ""
    decryption_alias: str = ""
    receive_path: str = ""
    max_body_bytes: int = 64 * 1024 * 1024
    max_payload_bytes: int = 64 * 1024 * 1024
    partners: dict[str, As4PartnerSettings] = field(default_factory=dict)

    @property
    def configured(self) -> bool:
        return bool(self.party_id and self.signing_alias)


@dataclass
class As4AuthoritySettings:
    """An authority's own AS4 values (``[oots.requesters.<CVR>.as4]``); empty: the platform's."""

    party_id: str = ""
    party_type: str = ""
    signing_alias: str = ""
    decryption_alias: str = ""
    #: Partners of its own, by party id; the platform's partners stay known beside them.
    partners: dict[str, As4PartnerSettings] = field(default_factory=dict)


def for_authority(base: As4Settings, own: As4AuthoritySettings) -> As4Settings:
    """The access point of an authority with ``own`` values over the platform's ``base``.

    Each field falls back on its own, except the keys: they come as a whole, from the authority
    when it names its signing key, else from the platform (never its signing key with the
    platform's decryption key). Partners are the platform's with the authority's over them.
    The receiving endpoint and its limits are the platform's.
    """
    own_keys = bool(own.signing_alias)
    return replace(
        base,
        party_id=own.party_id or base.party_id,
        party_type=own.party_type or base.party_type,
        signing_alias=own.signing_alias if own_keys else base.signing_alias,
        decryption_alias=own.decryption_alias if own_keys else base.decryption_alias,
        partners={**base.partners, **own.partners},
    )


def key_pair(certs: CertificateStore, alias: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """The RSA key and certificate of ``alias`` in ``certs``, usable now (present, matching,
    private, valid). Raises ConfigurationError whose ``detail`` says why not: the reason
    ``config check`` gives, and the one an access point opened with the alias fails with."""
    try:
        _, key_path = certs.client_pair(alias)
        key = load_pem_private_key(Path(key_path).read_bytes(), None)
        certificate = certs.certificate(alias)
    except ServicePlatformError as exc:
        raise ConfigurationError(exc.error_text) from exc
    except (OSError, ValueError) as exc:
        raise ConfigurationError("unreadable key") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigurationError("eDelivery AS4 1.15 needs RSA")
    return key, certificate


def _pair(
    certs: CertificateStore, alias: str, what: str
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    try:
        return key_pair(certs, alias)
    except ConfigurationError as exc:
        raise ConfigurationError(f"[oots.as4] {what} {alias!r}: {exc.detail}") from exc


def local_access_point(settings: As4Settings, certs: CertificateStore) -> LocalAccessPoint:
    """Our access point with its keys from the certificate store."""
    if not settings.configured:
        raise ConfigurationError("[oots.as4] party_id and signing_alias are not configured")
    sign_key, sign_cert = _pair(certs, settings.signing_alias, "signing_alias")
    alias = settings.decryption_alias or settings.signing_alias
    decrypt_key, decrypt_cert = _pair(certs, alias, "decryption_alias")
    return LocalAccessPoint(
        settings.party_id,
        SigningKey(sign_key, sign_cert),
        DecryptionKey(decrypt_key, decrypt_cert),
        settings.party_type,
    )


def _certificate(path: Path, what: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"[oots.as4.partners] {what} {path}: no PEM certificate") from exc


def partners(settings: As4Settings, *, path: Callable[[str], Path] = Path) -> dict[str, As4Partner]:
    """The configured partners by party id; ``path`` resolves a configured file name."""
    found: dict[str, As4Partner] = {}
    for party_id, partner in settings.partners.items():
        where = f"{party_id}:"
        # The rule config check applies: it may not let pass what this refuses, nor the reverse.
        if not is_http_url(partner.endpoint_url):
            raise ConfigurationError(f"[oots.as4.partners] {where} endpoint_url is not a URL")
        if not partner.signing_cert:
            raise ConfigurationError(f"[oots.as4.partners] {where} signing_cert is not set")
        signing = _certificate(path(partner.signing_cert), f"{where} signing_cert")
        encryption = (
            _certificate(path(partner.encryption_cert), f"{where} encryption_cert")
            if partner.encryption_cert
            else signing
        )
        ca_cert = str(path(partner.ca_cert)) if partner.ca_cert else None
        if ca_cert is not None and not Path(ca_cert).is_file():
            raise ConfigurationError(f"[oots.as4.partners] {where} ca_cert {ca_cert} is missing")
        target = HttpTarget(partner.endpoint_url, ca_cert=ca_cert, timeout=partner.timeout_seconds)
        found[party_id] = As4Partner(party_id, target, signing, encryption, partner.party_type)
    return found
