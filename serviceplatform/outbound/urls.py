"""The one rule for the URL of an outward HTTP peer, shared by the start checks and the calls.

``config check`` and ``serve`` refuse a URL the transports would refuse later, and the
transports refuse nothing they let pass: a peer's ``base_url``, an integration's own URLs
(``SettingsSection.urls``) and the AS4 partners' endpoints are all judged here.
"""

from __future__ import annotations

from urllib.parse import urlsplit


def is_http_url(url: str) -> bool:
    """True when ``url`` is an absolute http(s) URL with a host, and a valid port if any.

    The scheme is compared without case (``HTTPS://`` is https, as for ``requests``).
    """
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - it raises ValueError for a port out of range or not a number
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)
