"""The effective settings as TOML, with secrets shown as ``***`` (for ``config check``).

Masked: every value of a key ending in ``password`` (``oots.domibus_password``,
``oots.push_password``, ...), the admin principals' ``token_sha256`` (a hash, but of a bearer
token that may be short enough to guess) and the password inside any URL
(``database.url``, ``distributor.amqp.url``: ``scheme://user:***@host``). Paths are shown,
including those of keys and password files: they say where a secret is, not what it is, and
an operator checking a configuration needs them. An empty value stays empty, so a missing
secret is visible.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import tomli_w

from serviceplatform.config import Settings

MASK = "***"
_SECRET_KEYS = ("token_sha256",)
# scheme://user:password@ : the password is everything between the user's colon and the @.
_URL_PASSWORD = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/:@]*:)[^/@]*@")


def masked_settings(settings: Settings) -> dict[str, Any]:
    """The settings as plain TOML data, secrets masked.

    ``base_dir`` is left out: it is where the file is, not something the file should set.
    """
    data = asdict(settings)
    data.pop("base_dir")
    # The integrations' sections are tables of the file like the core's own.
    data.update(data.pop("sections"))
    masked: dict[str, Any] = _mask(data)
    return masked


def masked_toml(settings: Settings) -> str:
    """The settings as a TOML document, secrets masked."""
    return tomli_w.dumps(masked_settings(settings))


def password_settings(data: Mapping[str, Any], prefix: str = "") -> list[str]:
    """The dotted keys of TOML ``data`` that hold a password: a non-empty value of a key
    ending in ``password``, or a URL with a password in it (``database.url``)."""
    found: list[str] = []
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            found += password_settings(value, f"{dotted}.")
            continue
        values = value if isinstance(value, list) else [value]
        texts = [v for v in values if isinstance(v, str) and v]
        if texts and (key.endswith("password") or any(_URL_PASSWORD.match(v) for v in texts)):
            found.append(dotted)
    return found


def _is_secret(key: str) -> bool:
    return key.endswith("password") or key in _SECRET_KEYS


def _mask(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _mask(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v, key) for v in value]
    if isinstance(value, str) and value:
        return MASK if _is_secret(key) else _URL_PASSWORD.sub(rf"\g<1>{MASK}@", value)
    return value
