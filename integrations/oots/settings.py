"""OOTS's own settings, ``[oots]`` and ``[oots.requesters.<CVR>]`` (``INTEGRATION.settings``).

Loaded by the core's settings loader into :class:`OotsSettings`; code reads it with
``settings.section(OOTS_SETTINGS)``. The Domibus password files are named to ``config
check``, which refuses them when group or others may read them, and so are the URLs and PEM
certificate files (Domibus, the common services, the AS4 partners), which it refuses when
they could not be used (not an http(s) URL; a file missing or holding no PEM certificate).
``file_problems`` reads what the core cannot judge, with the rules the gateways read them
by: a password file that cannot be read (``read_password_file``) and an AS4 key alias with no
usable RSA pair in the certificate store (``as4.settings.key_pair``). ``problems`` refuses an
AS4 endpoint or authority without the access point's party id and signing key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from integrations.oots.as4.settings import (
    As4AuthoritySettings,
    As4PartnerSettings,
    As4Settings,
    for_authority,
    key_pair,
)
from serviceplatform.errors import ConfigurationError
from serviceplatform.integration import ZERO_ALLOWED, SettingsSection
from serviceplatform.outbound.certstore import CertificateStore


@dataclass
class OotsRequesterSettings:
    """One authority as an OOTS Evidence Requester (``[oots.requesters.<CVR>]``)."""

    #: Its name in the EDM request (``sdg:EvidenceRequester/sdg:Name``).
    name: str = ""
    #: The authority's own Domibus access point, when it runs one ("direct integration"):
    #: its WS plugin, plugin user and party id. Empty: the platform's ``[oots]`` values.
    domibus_url: str = ""
    domibus_username: str = ""
    domibus_password: str = ""
    domibus_password_file: str = ""
    domibus_ca_cert: str = ""
    party_id: str = ""
    #: Which gateway its requests go through: ``domibus-ws`` (a Domibus WS plugin, the
    #: platform's or its own above) or ``as4`` (the platform itself as its AS4 access point,
    #: ``[oots.as4]`` with ``as4`` below over it; docs/oots-as4.md).
    gateway: str = "domibus-ws"
    as4: As4AuthoritySettings = field(default_factory=As4AuthoritySettings)


#: The values of ``[oots.requesters.<CVR>] gateway``.
GATEWAY_DOMIBUS_WS: Final = "domibus-ws"
GATEWAY_AS4: Final = "as4"
GATEWAYS: Final = (GATEWAY_DOMIBUS_WS, GATEWAY_AS4)


@dataclass
class OotsSettings:
    """OOTS evidence requests (``integrations/oots``; ``docs/oots-service.md``)."""

    #: The Domibus WS plugin of the platform's access point (``.../services/wsplugin``).
    #: Empty: the OOTS service refuses evidence requests with SP-901 (finding still works).
    domibus_url: str = ""
    domibus_username: str = ""
    #: The plugin user's password: here (best from ``SP_OOTS__DOMIBUS_PASSWORD``) or a file.
    domibus_password: str = ""
    domibus_password_file: str = ""
    #: PEM bundle trusted for Domibus' certificate (an ``https`` URL); empty: public roots.
    domibus_ca_cert: str = ""
    domibus_timeout_seconds: float = 30.0
    #: The platform's own access point party id (the ebMS ``From`` party).
    party_id: str = ""
    #: The common services (Evidence Broker and Data Service Directory) ``.../rest/search``.
    common_services_url: str = ""
    common_services_timeout_seconds: float = 10.0
    #: How long an Evidence Broker or DSD answer is reused.
    cache_ttl_seconds: int = field(default=3600, metadata=ZERO_ALLOWED)
    #: Seconds between two collections of answers from Domibus in each server process
    #: (0: only when a call waits for or asks about an answer).
    poll_interval_seconds: float = field(default=5.0, metadata=ZERO_ALLOWED)
    #: How long AnmodBevis waits for the provider's answer before answering ``Afventer``.
    answer_wait_seconds: float = field(default=2.0, metadata=ZERO_ALLOWED)
    #: A request still unanswered after this long fails with SP-721; one the gateway never
    #: took (it stayed queued) fails with SP-723.
    answer_timeout_seconds: int = 86400
    #: A request queued because the gateway was down is sent again by the poller once it has
    #: waited this long: longer than one submission may take, so a first attempt still under
    #: way is never raced by its resend.
    resend_after_seconds: float = 60.0
    #: Evidence documents (and the requests' personal data) are deleted this long after the
    #: request is finished.
    evidence_retention_hours: int = 24
    #: The scheme of the requester identifiers in the routing table (role ``oots_requester``).
    requester_scheme: str = "urn:cef.eu:names:identifier:EAS:0184"
    requester_country: str = "DK"
    #: Where the procedures are implemented (the Evidence Broker's jurisdiction).
    procedure_country: str = "DK"
    #: Path the Domibus push endpoint (``BackendService``) is mounted at; empty: not mounted.
    push_path: str = ""
    push_username: str = ""
    push_password: str = ""
    requesters: dict[str, OotsRequesterSettings] = field(default_factory=dict)
    #: The platform's own AS4 access point (``[oots.as4]``, docs/oots-as4.md).
    as4: As4Settings = field(default_factory=As4Settings)


def _secret_files(section: OotsSettings) -> Iterator[tuple[str, str]]:
    if section.domibus_password_file:
        yield "oots.domibus_password_file", section.domibus_password_file
    for cvr, requester in section.requesters.items():
        if requester.domibus_password_file:
            yield f"oots.requesters.{cvr}.domibus_password_file", requester.domibus_password_file


def _urls(section: OotsSettings) -> Iterator[tuple[str, str]]:
    # The Domibus and common services URLs are optional (empty: not used); a declared AS4
    # partner is reached at its endpoint_url and nowhere else.
    if section.domibus_url:
        yield "oots.domibus_url", section.domibus_url
    if section.common_services_url:
        yield "oots.common_services_url", section.common_services_url
    for party_id, partner in sorted(section.as4.partners.items()):
        yield f"oots.as4.partners.{party_id}.endpoint_url", partner.endpoint_url
    for cvr, requester in sorted(section.requesters.items()):
        if requester.domibus_url:
            yield f"oots.requesters.{cvr}.domibus_url", requester.domibus_url
        for party_id, partner in sorted(requester.as4.partners.items()):
            where = f"oots.requesters.{cvr}.as4.partners.{party_id}"
            yield f"{where}.endpoint_url", partner.endpoint_url


def _partner_files(where: str, partner: As4PartnerSettings) -> Iterator[tuple[str, str]]:
    # signing_cert is required (it verifies the partner's messages); the others are optional.
    yield f"{where}.signing_cert", partner.signing_cert
    if partner.encryption_cert:
        yield f"{where}.encryption_cert", partner.encryption_cert
    if partner.ca_cert:
        yield f"{where}.ca_cert", partner.ca_cert


def _certificate_files(section: OotsSettings) -> Iterator[tuple[str, str]]:
    if section.domibus_ca_cert:
        yield "oots.domibus_ca_cert", section.domibus_ca_cert
    for party_id, partner in sorted(section.as4.partners.items()):
        yield from _partner_files(f"oots.as4.partners.{party_id}", partner)
    for cvr, requester in sorted(section.requesters.items()):
        if requester.domibus_ca_cert:
            yield f"oots.requesters.{cvr}.domibus_ca_cert", requester.domibus_ca_cert
        for party_id, partner in sorted(requester.as4.partners.items()):
            yield from _partner_files(f"oots.requesters.{cvr}.as4.partners.{party_id}", partner)


def _problems(section: OotsSettings) -> Iterable[str]:
    for cvr, requester in sorted(section.requesters.items()):
        if requester.gateway not in GATEWAYS:
            yield (
                f"setting oots.requesters.{cvr}.gateway: {requester.gateway!r} is not "
                f"one of {', '.join(repr(g) for g in GATEWAYS)}"
            )
        elif (
            requester.gateway == GATEWAY_AS4
            and not for_authority(section.as4, requester.as4).configured
        ):
            # Its every request would fail (SP-901): open_gateway needs both.
            yield (
                f"oots.requesters.{cvr}.gateway 'as4' needs an AS4 party_id and signing_alias "
                f"([oots.as4], or [oots.requesters.{cvr}.as4] over it)"
            )
    if section.as4.receive_path and not section.as4.configured:
        # The endpoint is built with each worker: every worker would fail to start.
        yield (
            f"oots.as4.receive_path {section.as4.receive_path!r} needs oots.as4.party_id and "
            "signing_alias: the AS4 endpoint receives as that access point"
        )


def read_password_file(path: Path) -> str:
    """The password in ``path``: its UTF-8 text without surrounding white space.

    Raises ConfigurationError whose ``detail`` says why it cannot be used (``config check``
    gives the same reason the gateway fails with): it cannot be read, is no UTF-8 text or
    holds no password (an empty password is no password, as ``domibus_password = ""`` is
    none).
    """
    try:
        password = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigurationError(f"cannot be read ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise ConfigurationError("is not UTF-8 text") from exc
    if not password:
        raise ConfigurationError("holds no password")
    return password


def _key_aliases(section: OotsSettings) -> Iterator[tuple[str, str]]:
    # The aliases an access point in use opens, as for_authority picks them: the platform's,
    # and an as4 authority's own keys (they come as a whole, with its signing_alias).
    def pair(where: str, signing: str, decryption: str) -> Iterator[tuple[str, str]]:
        if signing:
            yield f"{where}.signing_alias", signing
            if decryption:
                yield f"{where}.decryption_alias", decryption

    yield from pair("oots.as4", section.as4.signing_alias, section.as4.decryption_alias)
    for cvr, requester in sorted(section.requesters.items()):
        if requester.gateway == GATEWAY_AS4:
            own = requester.as4
            yield from pair(f"oots.requesters.{cvr}.as4", own.signing_alias, own.decryption_alias)


def _file_problems(
    section: OotsSettings, path: Callable[[str], Path], certificates: CertificateStore
) -> Iterator[str]:
    for setting, name in _secret_files(section):
        try:
            read_password_file(path(name))
        except ConfigurationError as exc:
            yield f"{setting}: {path(name)} {exc.detail}"
    for setting, alias in _key_aliases(section):
        try:
            key_pair(certificates, alias)
        except ConfigurationError as exc:
            yield f"{setting} {alias!r}: {exc.detail}"


OOTS_SETTINGS: Final = SettingsSection(
    "oots",
    OotsSettings,
    secret_files=_secret_files,
    problems=_problems,
    urls=_urls,
    certificate_files=_certificate_files,
    file_problems=_file_problems,
)
