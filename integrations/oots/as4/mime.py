"""SOAP with Attachments: the ``multipart/related`` message of AS4, written and read.

AS4 (§1.6 of eDelivery AS4 1.15) sends the SOAP 1.2 envelope as the root part and every payload
as a further MIME part:

    Content-Type: multipart/related; type="application/soap+xml"; boundary="..."; \
start="<root@...>"; start-info="application/soap+xml"

    --boundary
    Content-Type: application/soap+xml; charset=UTF-8
    Content-Transfer-Encoding: binary
    Content-ID: <root@...>

    <env:Envelope .../>
    --boundary
    Content-Type: application/octet-stream
    Content-Transfer-Encoding: binary
    Content-ID: <payload@...>

    ...bytes...
    --boundary--

``build_related`` writes it (binary parts, a random boundary that occurs in no part);
``parse_related`` reads one back and refuses, with ``As4MessageMalformed``, anything that is not
such a message: another media type, no boundary, no closing delimiter, a part without headers
or without ``Content-ID``, two parts with one ``Content-ID``, a ``start`` that names no part, an
unknown transfer encoding. Only a root part that no ``start`` names may lack a ``Content-ID``.
Content ids are kept *without* ``<>`` and ``cid:``
(``content_id_of`` turns a ``cid:`` URL of the ebMS ``PartInfo/@href`` into one). The body is
split with ``bytes`` operations rather than ``email``'s parser, which accepts broken input with
"defects" instead of refusing it and rewrites line ends; ``email`` still parses the headers.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import uuid
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser
from typing import Final
from urllib.parse import unquote

from integrations.oots.as4.errors import As4MessageMalformed
from integrations.oots.as4.model import ID_DOMAIN

SOAP12_MEDIA: Final = "application/soap+xml"
OCTET_STREAM: Final = "application/octet-stream"
GZIP_MEDIA: Final = "application/gzip"
_CRLF: Final = b"\r\n"
_HEADER_END: Final = b"\r\n\r\n"
#: A part's headers are a few lines; more is not an AS4 message.
_MAX_HEADER_BYTES: Final = 8 * 1024
_IDENTITY_ENCODINGS: Final = frozenset({"binary", "8bit", "7bit"})


@dataclass(frozen=True)
class MimePart:
    """One part: its ``Content-ID`` (without ``<>``), ``Content-Type`` and decoded content."""

    content_id: str
    content_type: str
    content: bytes

    @property
    def media_type(self) -> str:
        """``Content-Type`` without parameters, lower case."""
        return self.content_type.split(";", 1)[0].strip().lower()


@dataclass(frozen=True)
class RelatedMessage:
    """A read ``multipart/related`` message: the SOAP root part and the others, in order."""

    root: MimePart
    attachments: tuple[MimePart, ...]

    def attachment(self, content_id: str) -> MimePart | None:
        """The attachment with ``content_id`` (compared as RFC 2392 says: case-insensitive)."""
        wanted = content_id.lower()
        return next((p for p in self.attachments if p.content_id.lower() == wanted), None)


def new_part_id() -> str:
    """A fresh ``Content-ID`` value (without ``<>``)."""
    return f"{uuid.uuid4()}@{ID_DOMAIN}"


def content_id_of(href: str) -> str:
    """The ``Content-ID`` value a ``cid:`` URL names (RFC 2392: percent-decoded)."""
    if not href.lower().startswith("cid:") or len(href) <= 4:
        raise As4MessageMalformed(f"{href!r} is not a cid: reference")
    return unquote(href[4:])


def cid_url(content_id: str) -> str:
    """``cid:<content_id>`` for a ``PartInfo/@href`` or a signature reference."""
    return f"cid:{content_id}"


# --- writing -----------------------------------------------------------------------------------


def _boundary(parts: list[MimePart]) -> str:
    """A random boundary no part contains (re-drawn in the astronomically unlikely case)."""
    while True:
        boundary = f"MIMEBoundary_{secrets.token_hex(24)}"
        marker = boundary.encode("ascii")
        if not any(marker in part.content for part in parts):
            return boundary


def _check_header_value(what: str, value: str) -> None:
    if not value or any(c in value for c in '\r\n<>"') or not value.isascii():
        raise ValueError(f"{what} {value!r} cannot be written into a MIME header")


def build_related(root: MimePart, attachments: list[MimePart]) -> tuple[str, bytes]:
    """The HTTP ``Content-Type`` and body of the SwA message of ``root`` and ``attachments``."""
    parts = [root, *attachments]
    ids = [part.content_id.lower() for part in parts]
    if len(set(ids)) != len(ids):
        raise ValueError("the content ids of a MIME message must be unique")
    boundary = _boundary(parts)
    chunks: list[bytes] = []
    for part in parts:
        _check_header_value("Content-ID", part.content_id)
        if "\r" in part.content_type or "\n" in part.content_type:
            raise ValueError("a Content-Type cannot hold a line break")
        chunks += [
            b"--" + boundary.encode("ascii") + _CRLF,
            f"Content-Type: {part.content_type}\r\n".encode("ascii"),
            b"Content-Transfer-Encoding: binary\r\n",
            f"Content-ID: <{part.content_id}>\r\n\r\n".encode("ascii"),
            part.content,
            _CRLF,
        ]
    chunks.append(b"--" + boundary.encode("ascii") + b"--" + _CRLF)
    content_type = (
        f'multipart/related; type="{SOAP12_MEDIA}"; boundary="{boundary}"; '
        f'start="<{root.content_id}>"; start-info="{SOAP12_MEDIA}"'
    )
    return content_type, b"".join(chunks)


# --- reading -----------------------------------------------------------------------------------


def _header_message(raw: bytes) -> Message:
    # compat32 (the default) keeps each value as sent; the modern policies re-quote them.
    return BytesHeaderParser().parsebytes(raw)


def _strip_angle(value: str) -> str:
    value = value.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1].strip()
    return value


def _decode(encoding: str, content: bytes, content_id: str) -> bytes:
    encoding = encoding.strip().lower() or "binary"
    if encoding in _IDENTITY_ENCODINGS:
        return content
    if encoding == "base64":
        try:
            return base64.b64decode(b"".join(content.split()), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise As4MessageMalformed(f"part <{content_id}> is not valid base64") from exc
    raise As4MessageMalformed(f"part <{content_id}> has Content-Transfer-Encoding {encoding!r}")


def _read_part(raw: bytes, index: int) -> MimePart:
    # What follows the delimiter on its line is transport padding (RFC 2046 §5.1.1).
    line_end = raw.find(_CRLF)
    if line_end < 0 or raw[:line_end].strip(b" \t"):
        raise As4MessageMalformed(f"MIME part {index} does not start on a new line")
    rest = raw[line_end + 2 :]
    if rest.startswith(_CRLF):
        headers_raw, content = b"", rest[2:]
    else:
        end = rest.find(_HEADER_END)
        if end < 0 or end > _MAX_HEADER_BYTES:
            raise As4MessageMalformed(f"MIME part {index} has no end of headers")
        headers_raw, content = rest[: end + 2], rest[end + 4 :]
    try:
        headers = _header_message(headers_raw)
    except (UnicodeError, ValueError) as exc:
        raise As4MessageMalformed(f"MIME part {index} has unreadable headers") from exc
    # Checked by the caller: only the root part may go without (see ``parse_related``).
    content_id = _strip_angle(str(headers.get("Content-ID", "")))
    content_type = str(headers.get("Content-Type", "")).strip() or "text/plain"
    encoding = str(headers.get("Content-Transfer-Encoding", ""))
    return MimePart(content_id, content_type, _decode(encoding, content, content_id))


def media_type_parameters(content_type: str) -> tuple[str, dict[str, str]]:
    """The media type (lower case) and parameters of a ``Content-Type`` value."""
    message = Message()
    message["Content-Type"] = content_type
    params = message.get_params() or []
    values = {str(k).lower(): str(v) for k, v in params[1:]}
    return message.get_content_type(), values


def parse_related(content_type: str, body: bytes) -> RelatedMessage:
    """Read the SwA message of HTTP ``content_type`` and ``body``; see the module docstring."""
    media, params = media_type_parameters(content_type)
    if media != "multipart/related":
        raise As4MessageMalformed(f"Content-Type is {media!r}, expected multipart/related")
    boundary = params.get("boundary", "")
    if not boundary or len(boundary) > 70:
        raise As4MessageMalformed("the multipart/related Content-Type has no valid boundary")
    delimiter = _CRLF + b"--" + boundary.encode("ascii", "replace")
    # The first delimiter may open the body; prefixing CRLF makes it look like every other.
    pieces = (_CRLF + body).split(delimiter)
    if len(pieces) < 3:
        raise As4MessageMalformed("the multipart body holds no complete part")
    closing = pieces[-1]
    if not closing.startswith(b"--"):
        raise As4MessageMalformed("the multipart body has no closing delimiter")
    # pieces[0] is the preamble, pieces[-1] the close delimiter and epilogue: both ignored.
    parts = [_read_part(raw, index) for index, raw in enumerate(pieces[1:-1], start=1)]
    # The SOAP part may lack a Content-ID when no ``start`` names it (the ``as4`` package sends
    # it so); a payload part never: the ebMS header names payloads by it.
    for index, part in enumerate(parts, start=1):
        if not part.content_id and (index > 1 or "start" in params):
            raise As4MessageMalformed(f"MIME part {index} has no Content-ID")
    ids = [part.content_id.lower() for part in parts]
    if len(set(ids)) != len(ids):
        raise As4MessageMalformed("two MIME parts have the same Content-ID")
    start = _strip_angle(params.get("start", ""))
    if start:
        root = next((p for p in parts if p.content_id.lower() == start.lower()), None)
        if root is None:
            raise As4MessageMalformed(f"start <{start}> names no MIME part")
    else:
        root = parts[0]
    if root.media_type != SOAP12_MEDIA:
        raise As4MessageMalformed(f"the root part is {root.media_type!r}, not {SOAP12_MEDIA}")
    return RelatedMessage(root, tuple(p for p in parts if p is not root))
