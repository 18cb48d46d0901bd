"""What keeps valid settings from being served in production: the checks ``serve`` runs.

``serve`` refuses to start while any of these holds, and ``config check`` lists them all:

- no trusted STS certificate (``security.trusted_sts_certs``), or one that cannot be read:
  no token could be verified;
- no trusted issuer (``security.trusted_issuers``): any issuer whose signature verifies would
  do, which only tests want; or one that is empty or padded with white space, which no
  token's (trimmed, never empty) Issuer matches;
- no ``soap.public_base_url``: the signed ``wsa:To`` of a request is only checked against it,
  so without it a request signed for another endpoint would be accepted;
- a private key or password file readable (or writable) by group or others: the outward
  certificates' keys (``certificates.directory``, ``<alias>.key``), the AMQP token key
  (``distributor.amqp.sts_key``) and the files the integrations' sections name
  (``SettingsSection.secret_files``: OOTS's Domibus password files). Any local account could
  copy them and act as the platform;
- the settings file itself readable (or writable) by group or others while it holds a
  password: a ``database.url`` or ``distributor.amqp.url`` with a password in it, or a key
  ending in ``password`` (``oots.domibus_password``, ``oots.push_password``, ...). A password
  given by an ``SP_*`` variable is not in the file and does not count; one in the file does
  even when a variable overrides it (the file still shows it). ``token_sha256`` does not
  count: it is a digest, and a caller needs the token itself;
- the settings file, or a trusted STS certificate file, writable by group or others,
  whatever it holds: whoever may write the one chooses where the platform's calls go and
  whose tokens it trusts, and the other lets them sign tokens the platform accepts;
- a ``[peers.<name>]`` whose ``kind`` is in no peer kinds' table (``outbound/kinds.py``, the
  integrations' ``peer_kinds``): no transport could be built for it;
- a ``[peers.<name>]`` whose ``base_url`` is not an absolute http(s) URL with a host (and a
  valid port, if any), or whose ``ca_cert`` is missing, unreadable or holds no PEM
  certificate: every call to the peer would fail with SP-901 (every kind's transport is
  HTTP, ``outbound/transport.py``);
- the same for the URLs and PEM certificate files an integration's section names
  (``SettingsSection.urls``, ``certificate_files``: OOTS's Domibus and common services URLs,
  their CA files, the AS4 partners' endpoints and certificates): they are read only by the
  call that uses them, so a typo used to show hours later as a failed request; and what only
  reading the files a section names tells (``SettingsSection.file_problems``: OOTS's Domibus
  password files that cannot be read, AS4 key aliases the certificate store has no usable
  pair for), judged by the integration with the rule its own code reads them by;
- an unknown ``distributor.transport``; with ``amqp``: a ``distributor.amqp.url`` the
  transport refuses (``distribution/choices.py``, the rule both use), an unknown
  ``token_source``, an ``amqps://`` URL whose ``distributor.amqp.ca_cert`` is empty, missing,
  unreadable or holds no PEM certificate, and with ``token_source = "sandbox-sts"`` an
  ``sts_cert`` or ``sts_key`` that is no such file (no PEM private key) or no ``sts_issuer``:
  the first delivery, at the nightly's 02:00, would fail;
- a ``database.url`` that is no URL, or names another database than SQLite or PostgreSQL,
  or a SQLite file whose folder does not exist: every command would fail opening it;
- an ``[admin.principals.<name>]`` the admin API could not use: an unknown role, an
  authority administrator without ``authority_cvr``, a supplier without ``supplier`` and
  ``supplier_cvr``, a ``token_sha256`` that is no hex SHA-256 (every worker would otherwise
  fail at start with a traceback, or the token would never match).

Each problem is one line that starts with the setting to change. The checks only read files;
they open no database and no connection.
"""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from serviceplatform.admin.auth import principal_problems
from serviceplatform.config import CONFIG_ENV, Settings, load_settings, summarize
from serviceplatform.config_view import password_settings
from serviceplatform.distribution.choices import AMQP_URL_FORM, amqp_url_problem, unknown_transport
from serviceplatform.errors import ConfigurationError
from serviceplatform.outbound.certstore import CertificateStore, exposure
from serviceplatform.outbound.urls import is_http_url
from serviceplatform.registry import TOKEN_SOURCES, settings_sections, unknown_peer_kind
from serviceplatform.store.db import sqlite_folder_problem

#: The databases the platform runs on (``serviceplatform.store.db.Database``).
SUPPORTED_DATABASES = ("sqlite", "postgresql")


def settings_for_serving(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings ``SP_CONFIG`` names, for a WSGI server started without the CLI.

    Raises ConfigurationError (one line) when no file is named, a setting is invalid, or the
    settings are unfit to serve: the same refusals as ``serviceplatform serve``.
    """
    env = dict(os.environ if environ is None else environ)
    path = env.get(CONFIG_ENV, "")
    if not path:
        raise ConfigurationError(f"{CONFIG_ENV} names no configuration file")
    settings = load_settings(path, env)
    problems = serving_problems(settings, Path(path))
    if problems:
        raise ConfigurationError(f"cannot serve with {path}: {summarize(problems)}")
    return settings


def serving_problems(settings: Settings, file: Path | None = None) -> list[str]:
    """Every reason ``settings`` must not be served, one line each; empty when fit.

    ``file``: the settings file they were read from, whose own mode is checked when it holds
    a password.
    """
    url_problem = database_url_problem(settings.database.url) or _sqlite_folder_problem(settings)
    return [
        *([url_problem] if url_problem else []),
        *_settings_file_problems(file),
        *_sts_problems(settings),
        *_public_url_problems(settings),
        *_secret_file_problems(settings),
        *_peer_kind_problems(settings),
        *_peer_address_problems(settings),
        *_section_problems(settings),
        *_distributor_problems(settings),
        *principal_problems(settings.admin),
    ]


def database_url_problem(url: str) -> str | None:
    """Why ``url`` cannot name the platform's database (read, not connected); None if it can."""
    try:
        backend = make_url(url).get_backend_name()
    except ArgumentError:
        return "database.url: not a database URL (sqlite:///FILE or postgresql+psycopg://...)"
    if backend not in SUPPORTED_DATABASES:
        return f"database.url: unsupported database {backend!r} (sqlite, postgresql)"
    return None


def _sqlite_folder_problem(settings: Settings) -> str | None:
    """A SQLite file in a folder that does not exist (the platform creates no folders)."""
    url = make_url(settings.database.url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    problem = sqlite_folder_problem(settings.path(url.database))
    return None if problem is None else f"database.url: {problem}"


def _peer_kind_problems(settings: Settings) -> list[str]:
    """A peer whose ``kind`` names no transport could never be called."""
    problems: list[str] = []
    for name in sorted(settings.peers):
        problem = unknown_peer_kind(settings.peers[name].kind)
        if problem is not None:
            problems.append(f"peers.{name}.kind: {problem}")
    return problems


def _peer_address_problems(settings: Settings) -> list[str]:
    """A peer whose address or trusted CA could not be used: each call would fail SP-901."""
    problems: list[str] = []
    for name in sorted(settings.peers):
        peer = settings.peers[name]
        problem = _url_problem(f"peers.{name}.base_url", peer.base_url)
        if problem is not None:
            problems.append(problem)
        if peer.ca_cert:
            problem = _certificate_file_problem(
                f"peers.{name}.ca_cert", settings.path(peer.ca_cert)
            )
            if problem is not None:
                problems.append(problem)
    return problems


def _section_problems(settings: Settings) -> list[str]:
    """The URLs and certificate files the integrations' sections declare, checked as a peer's:
    such a setting is read only by the call that uses it, hours after the start."""
    found: list[str | None] = []
    certificates = CertificateStore(settings.path(settings.certificates.directory))
    for spec in settings_sections():
        section = settings.section(spec)
        found += [_url_problem(setting, url) for setting, url in spec.urls(section)]
        found += [
            _certificate_file_problem(setting, _configured(settings, raw))
            for setting, raw in spec.certificate_files(section)
        ]
        found += spec.file_problems(section, settings.path, certificates)
    return [problem for problem in found if problem is not None]


def _distributor_problems(settings: Settings) -> list[str]:
    """The files an AMQP distributor reads at its first delivery (the nightly's, at 02:00).

    Only what that transport uses: the file drop reads nothing of ``[distributor.amqp]``, an
    ``amqp://`` URL no ``ca_cert`` and the ``file`` token source neither STS file.
    """
    distributor = settings.distributor
    unknown = unknown_transport(distributor.transport)
    if unknown is not None:
        return [f"distributor.transport: {unknown}"]
    if distributor.transport != "amqp":
        return []
    amqp = distributor.amqp
    found: list[str | None] = []
    url_problem = amqp_url_problem(amqp.url)
    if url_problem is not None:
        # Not quoted: the URL may hold the broker's password.
        found.append(f"distributor.amqp.url {url_problem} ({AMQP_URL_FORM})")
    if amqp.token_source not in TOKEN_SOURCES:
        known = ", ".join(sorted(TOKEN_SOURCES))
        found.append(
            f"distributor.amqp.token_source: unknown token source {amqp.token_source!r} "
            f"(known: {known})"
        )
    if urlsplit(amqp.url).scheme == "amqps":
        ca_cert = _configured(settings, amqp.ca_cert)
        found.append(_certificate_file_problem("distributor.amqp.ca_cert", ca_cert))
    if amqp.token_source == "sandbox-sts":
        sts_cert = _configured(settings, amqp.sts_cert)
        found.append(_certificate_file_problem("distributor.amqp.sts_cert", sts_cert))
        sts_key = _configured(settings, amqp.sts_key)
        found.append(_private_key_problem("distributor.amqp.sts_key", sts_key))
        if not amqp.sts_issuer.strip():
            found.append(
                "distributor.amqp.sts_issuer is empty: name the Issuer the tokens the "
                "sandbox STS mints carry (the token source is not built without it)"
            )
    return [problem for problem in found if problem is not None]


def _configured(settings: Settings, raw: str) -> Path | None:
    """The file a path setting names, resolved; None when it is empty."""
    return settings.path(raw) if raw else None


def _url_problem(setting: str, url: str) -> str | None:
    """Why ``url`` (the value of ``setting``) cannot address an HTTP peer, or None.

    It must be an absolute http(s) URL with a host, and a valid port if it names one.
    """
    if is_http_url(url):
        return None
    return (
        f"{setting} {url!r} is not an absolute http(s) URL with a host (https://host[:port]/path)"
    )


def _certificate_file_problem(setting: str, path: Path | None) -> str | None:
    """Why ``path`` (``setting``'s file; None: not set) is no readable file of PEM
    certificates, or None when it is one."""
    if path is None:
        return f"{setting} is empty: name a file of PEM certificates"
    try:
        x509.load_pem_x509_certificates(path.read_bytes())
    except OSError as exc:
        return f"{setting}: {path} cannot be read ({exc.strerror or exc})"
    except ValueError:
        return f"{setting}: {path} holds no PEM certificate"
    return None


def _private_key_problem(setting: str, path: Path | None) -> str | None:
    """Why ``path`` (None: not set) is no readable, unencrypted PEM private key, or None."""
    if path is None:
        return f"{setting} is empty: name a PEM private key file"
    try:
        load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        return f"{setting}: {path} cannot be read ({exc.strerror or exc})"
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # TypeError: the key is encrypted, and the platform is given no password for it.
        return f"{setting}: {path} holds no unencrypted PEM private key"
    return None


def _sts_problems(settings: Settings) -> list[str]:
    security = settings.security
    problems: list[str] = []
    if not security.trusted_sts_certs:
        problems.append(
            "security.trusted_sts_certs is empty: name the PEM files of the STS certificates "
            "whose tokens are trusted"
        )
    setting = "security.trusted_sts_certs"
    for raw in security.trusted_sts_certs:
        path = settings.path(raw)
        problem = _certificate_file_problem(setting, path) or _writable_problem(
            setting, path, "whoever may write it can make the platform accept tokens they sign"
        )
        if problem is not None:
            problems.append(problem)
    if not security.trusted_issuers:
        problems.append("security.trusted_issuers is empty: name the Issuer of the STS's tokens")
    for issuer in security.trusted_issuers:
        # A token's Issuer is read without surrounding white space and is never empty
        # (security/token.py): such an entry matches no token.
        if not issuer or issuer != issuer.strip():
            problems.append(
                f"security.trusted_issuers: {issuer!r} is blank or padded with white space: "
                "it matches no token's Issuer"
            )
    return problems


def _public_url_problems(settings: Settings) -> list[str]:
    base = settings.soap.public_base_url
    if not base:
        return [
            "soap.public_base_url is empty: give the base URL callers use (https://host), "
            "so the signed wsa:To of each request is checked"
        ]
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return [f"soap.public_base_url {base!r} is not an http(s) URL with a host"]
    return []


def _writable_problem(setting: str, path: Path, consequence: str) -> str | None:
    """Why ``path`` must not stay writable by group or others (``consequence``), or None."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None  # a missing file is reported where it is read
    if not mode & 0o022:
        return None
    return (
        f"{setting}: {path} is writable by group or others (mode {mode:04o}): {consequence}: "
        f"chmod go-w {path}"
    )


def _settings_file_problems(file: Path | None) -> list[str]:
    """The settings file writable by group or others, or open to them while it holds a
    password."""
    if file is None:
        return []
    writable = _writable_problem(
        "the settings file",
        file,
        "whoever may write it chooses where the platform's calls go and whose tokens it trusts",
    )
    # With a password in it, its own line asks for chmod 600, which mends both.
    return _password_exposure(file) or ([writable] if writable else [])


def _password_exposure(file: Path) -> list[str]:
    """The settings file open to group or others while it holds a password."""
    try:
        mode = stat.S_IMODE(file.stat().st_mode)
        what = exposure(mode)
        if what is None:
            return []
        # The file as written, without the SP_* variables: only what is in it is exposed.
        data = tomllib.loads(file.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return []  # reading the settings reports that, with its own error
    passwords = password_settings(data)
    if not passwords:
        return []
    return [
        f"{', '.join(passwords)}: {file} holds a password and is {what} by group or others "
        f"(mode {mode:04o}): chmod 600 {file}"
    ]


def _secret_files(settings: Settings) -> list[tuple[str, Path]]:
    """(setting, path) of every private key and password file the settings name."""
    found: list[tuple[str, Path]] = []
    directory = settings.path(settings.certificates.directory)
    if directory.is_dir():
        found += [("certificates.directory", key) for key in sorted(directory.glob("*.key"))]
    if settings.distributor.amqp.sts_key:
        found.append(("distributor.amqp.sts_key", settings.path(settings.distributor.amqp.sts_key)))
    for spec in settings_sections():
        for setting, path in spec.secret_files(settings.section(spec)):
            found.append((setting, settings.path(path)))
    return found


def _secret_file_problems(settings: Settings) -> list[str]:
    problems: list[str] = []
    for setting, path in _secret_files(settings):
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except OSError:
            continue  # a missing file fails where it is used, with its own error
        what = exposure(mode)
        if what is not None:
            problems.append(
                f"{setting}: {path} is {what} by group or others (mode {mode:04o}): chmod 600 it"
            )
    return problems
