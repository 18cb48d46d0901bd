"""Which SOAP version a refused request is answered in (``soap/fault_version.py``)."""

from __future__ import annotations

import pytest
from lxml import etree

from serviceplatform.soap.envelope import SOAP11_ENV_NS, SOAP12_ENV_NS
from serviceplatform.soap.fault_version import fault_version

BOTH = frozenset({11, 12})
ONLY_12 = frozenset({12})
ONLY_11 = frozenset({11})


def test_a_parsed_envelope_decides_even_on_a_port_without_its_version() -> None:
    root = etree.fromstring(f'<s:Envelope xmlns:s="{SOAP11_ENV_NS}"/>'.encode())
    assert fault_version(ONLY_12, root=root, content_type="application/soap+xml") == 11


@pytest.mark.parametrize(
    ("declared", "content_type", "body", "expected"),
    [
        (BOTH, "text/xml; charset=utf-8", b"<x", 11),
        (BOTH, "application/soap+xml; action=x", b"<x", 12),
        (BOTH, "", f'<s:Envelope xmlns:s="{SOAP11_ENV_NS}"><s:B'.encode(), 11),
        (BOTH, "", f'<s:Envelope xmlns:s="{SOAP12_ENV_NS}"><s:B'.encode(), 12),
        (BOTH, "", b"garbage", 11),
        (ONLY_12, "text/xml", b"<x", 12),
        (ONLY_11, "application/soap+xml", b"<x", 11),
        (ONLY_12, "", b"", 12),
    ],
)
def test_unreadable_requests(
    declared: frozenset[int], content_type: str, body: bytes, expected: int
) -> None:
    assert fault_version(declared, content_type=content_type, body=body) == expected
