"""What ``[distributor]`` may say: its transports and the AMQP broker's URL, without pika.

The transports refuse these at their first delivery (the nightly's, at 02:00); ``config
check`` and ``serve`` refuse them at start with the same rule, so the two cannot disagree.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

#: The values of ``[distributor] transport`` (``factory.distributor_from_settings``).
TRANSPORTS: Final = ("file", "amqp")

#: The shape of ``[distributor.amqp] url``, for messages.
AMQP_URL_FORM: Final = "amqp[s]://user:password@host[:port]/"


def unknown_transport(name: str) -> str | None:
    """Why ``name`` cannot be ``[distributor] transport``, or None when it is one."""
    if name in TRANSPORTS:
        return None
    return f"unknown transport {name!r} (known: {', '.join(TRANSPORTS)})"


def amqp_url_problem(url: str) -> str | None:
    """Why ``url`` cannot address the broker, or None when it can.

    The text never quotes the URL: it may hold the broker password.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("amqp", "amqps"):
        return "must start with amqp:// or amqps://"
    if parts.path not in ("", "/"):
        return "must not name a virtual host; set virtual_host instead"
    try:
        parts.port  # noqa: B018 - it raises ValueError for a port out of range or not a number
    except ValueError:
        return "has an invalid port"
    if not parts.hostname:
        return "has no host"
    return None
