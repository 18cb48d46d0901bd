"""SwA ``multipart/related`` (integrations/oots/as4/mime.py) and gzip compression, on their own."""

from __future__ import annotations

import gzip
import os

import pytest

from integrations.oots.as4.compression import compress, decompress
from integrations.oots.as4.errors import As4DecompressionFailed, As4MessageMalformed
from integrations.oots.as4.mime import (
    MimePart,
    build_related,
    content_id_of,
    media_type_parameters,
    parse_related,
)

SOAP = b'<?xml version="1.0"?><env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"/>'


def _message() -> tuple[MimePart, list[MimePart]]:
    root = MimePart("root@oots.eu", "application/soap+xml; charset=UTF-8", SOAP)
    # Binary content with CR, LF, CRLF, a lookalike delimiter and trailing line ends.
    tricky = b"\r\n--MIMEBoundary\r\n\n\r\x00\xff" + os.urandom(4096) + b"\r\n\r\n"
    parts = [
        MimePart("payload-1@oots.eu", "application/octet-stream", tricky),
        MimePart("payload-2@oots.eu", "application/gzip", compress(b"<a/>" * 1000)),
        MimePart("empty@oots.eu", "application/octet-stream", b""),
    ]
    return root, parts


def test_round_trip_keeps_ids_types_and_exact_bytes() -> None:
    root, parts = _message()
    content_type, body = build_related(root, parts)
    media, params = media_type_parameters(content_type)
    assert media == "multipart/related"
    assert params["type"] == "application/soap+xml"
    assert params["start"] == "<root@oots.eu>"
    assert params["start-info"] == "application/soap+xml"
    read = parse_related(content_type, body)
    assert read.root == root
    assert read.attachments == tuple(parts)
    assert [len(p.content) for p in read.attachments] == [len(p.content) for p in parts]
    assert read.attachment("PAYLOAD-2@oots.eu") == parts[1]
    assert read.attachment("nope@oots.eu") is None


def test_root_is_found_by_start_not_by_position() -> None:
    root, parts = _message()
    content_type, body = build_related(root, parts)
    boundary = media_type_parameters(content_type)[1]["boundary"]
    # The same parts with the root moved last: start still names it.
    chunks = body.split(b"--" + boundary.encode())
    reordered = chunks[0] + b"".join(
        b"--" + boundary.encode() + c for c in [*chunks[2:-1], chunks[1]]
    )
    reordered += b"--" + boundary.encode() + chunks[-1]
    read = parse_related(content_type, reordered)
    assert read.root == root and len(read.attachments) == 3


def test_without_start_the_first_part_is_the_root_and_base64_is_decoded() -> None:
    body = (
        b"preamble\r\n--b1\r\nContent-Type: application/soap+xml\r\nContent-ID: <r>\r\n\r\n"
        + SOAP
        + b"\r\n--b1\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
        b"Content-ID: <p1>\r\n\r\nJVBE\r\nRi0x\r\n--b1--\r\nepilogue"
    )
    read = parse_related('multipart/related; type="application/soap+xml"; boundary=b1', body)
    assert read.root.content == SOAP
    assert read.attachments == (MimePart("p1", "application/pdf", b"%PDF-1"),)


def test_a_root_part_without_content_id_is_accepted_when_no_start_names_it() -> None:
    # What the as4 package sends: the SOAP part first, without Content-ID, no start parameter.
    body = b"--b\r\nContent-Type: application/soap+xml\r\n\r\n<x/>\r\n" + (
        b"--b\r\nContent-Type: application/octet-stream\r\nContent-ID: <p>\r\n\r\nP\r\n--b--"
    )
    read = parse_related("multipart/related; boundary=b", body)
    assert read.root.content == b"<x/>" and read.root.content_id == ""
    assert read.attachments == (MimePart("p", "application/octet-stream", b"P"),)


def test_cid_urls() -> None:
    assert content_id_of("cid:abc%40x.eu") == "abc@x.eu"
    assert content_id_of("CID:a@b") == "a@b"
    with pytest.raises(As4MessageMalformed):
        content_id_of("http://x/a")


GOOD_PART = b"--b\r\nContent-Type: application/soap+xml\r\nContent-ID: <r>\r\n\r\n<x/>\r\n"


@pytest.mark.parametrize(
    ("content_type", "body", "message"),
    [
        ("text/xml", GOOD_PART + b"--b--", "expected multipart/related"),
        ("multipart/related", GOOD_PART + b"--b--", "no valid boundary"),
        ("multipart/related; boundary=b", b"no delimiter at all", "no complete part"),
        ("multipart/related; boundary=b", GOOD_PART, "no complete part"),
        ("multipart/related; boundary=b", GOOD_PART + b"--b\r\n", "no closing delimiter"),
        (
            "multipart/related; boundary=b",
            GOOD_PART + b"--b\r\nContent-Type: application/pdf\r\n\r\n%PDF\r\n--b--",
            "part 2 has no Content-ID",
        ),
        (
            'multipart/related; boundary=b; start="<r>"',
            b"--b\r\nContent-Type: application/soap+xml\r\n\r\n<x/>\r\n--b--",
            "part 1 has no Content-ID",
        ),
        (
            "multipart/related; boundary=b",
            b"--b\r\nContent-Type: application/soap+xml\r\nContent-ID: <r>\r\n<x/>\r\n--b--",
            "no end of headers",
        ),
        (
            "multipart/related; boundary=b",
            GOOD_PART + GOOD_PART.replace(b"soap+xml", b"pdf") + b"--b--",
            "same Content-ID",
        ),
        ('multipart/related; boundary=b; start="<x>"', GOOD_PART + b"--b--", "names no MIME part"),
        (
            "multipart/related; boundary=b",
            GOOD_PART.replace(b"soap+xml", b"pdf") + b"--b--",
            "not application/soap+xml",
        ),
        (
            "multipart/related; boundary=b",
            GOOD_PART.replace(b"Content-ID", b"Content-Transfer-Encoding: uuencode\r\nContent-ID")
            + b"--b--",
            "uuencode",
        ),
        ("multipart/related; boundary=b", GOOD_PART + b"--bX\r\n--b--", "start on a new line"),
    ],
)
def test_malformed_messages_are_refused_with_a_clear_error(
    content_type: str, body: bytes, message: str
) -> None:
    with pytest.raises(As4MessageMalformed) as raised:
        parse_related(content_type, body)
    assert message in str(raised.value)
    assert raised.value.code == "SP-780" and raised.value.ebms_code == "EBMS:0004"


def test_build_refuses_duplicate_ids_and_header_injection() -> None:
    root, parts = _message()
    with pytest.raises(ValueError, match="unique"):
        build_related(root, [*parts, MimePart("ROOT@oots.eu", "a/b", b"")])
    with pytest.raises(ValueError, match="MIME header"):
        build_related(root, [MimePart("x>\r\nX-Evil: 1", "a/b", b"")])


def test_gzip_round_trip_and_interop_with_the_gzip_module() -> None:
    content = os.urandom(1000) + b"a" * 100_000
    packed = compress(content)
    assert gzip.decompress(packed) == content
    assert decompress(gzip.compress(content)) == content
    assert decompress(packed, max_bytes=len(content)) == content


def test_a_decompression_bomb_stops_at_the_cap() -> None:
    bomb = gzip.compress(b"\0" * 50_000_000)
    assert len(bomb) < 100_000
    with pytest.raises(As4DecompressionFailed, match="more than 1000000 bytes") as raised:
        decompress(bomb, max_bytes=1_000_000)
    assert raised.value.ebms_code == "EBMS:0303"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"plain text, not gzip", "not gzip"),
        (gzip.compress(b"x" * 1000)[:-12], "truncated"),
        (gzip.compress(b"a") + b"garbage", "follows the end"),
    ],
    # gzip writes the time into its header: names, not bytes, so every xdist worker agrees.
    ids=["not-gzip", "truncated", "garbage-after-the-end"],
)
def test_broken_gzip_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(As4DecompressionFailed, match=message):
        decompress(data)
