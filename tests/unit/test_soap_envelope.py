"""The hardened SOAP envelope parser: limits, forbidden constructs, envelope shape."""

from __future__ import annotations

import threading

import pytest

from serviceplatform.errors import (
    ForbiddenXmlConstruct,
    MalformedXml,
    NotSoapEnvelope,
    RequestTooLarge,
)
from serviceplatform.soap.envelope import (
    SOAP11_ENV_NS,
    SOAP12_ENV_NS,
    parse_envelope,
    parse_xml,
)

LIMIT = 64 * 1024


def envelope(
    body: str = '<x:Ping xmlns:x="urn:test">1</x:Ping>',
    *,
    ns: str = SOAP12_ENV_NS,
    header: str = "<s:Header/>",
    prolog: str = "",
) -> bytes:
    return (
        f'{prolog}<s:Envelope xmlns:s="{ns}">{header}<s:Body>{body}</s:Body></s:Envelope>'
    ).encode()


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>
<x:Ping xmlns:x="urn:test">&lol9;</x:Ping></s:Body></s:Envelope>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE s:Envelope [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>
<x:Ping xmlns:x="urn:test">&xxe;</x:Ping></s:Body></s:Envelope>"""


def test_soap12_envelope_parts() -> None:
    parsed = parse_envelope(envelope(), max_bytes=LIMIT)
    assert parsed.soap_version == 12
    assert parsed.soap_ns == SOAP12_ENV_NS
    assert parsed.header is not None and parsed.header.tag == f"{{{SOAP12_ENV_NS}}}Header"
    assert parsed.body.tag == f"{{{SOAP12_ENV_NS}}}Body"
    assert parsed.body_child.tag == "{urn:test}Ping"
    assert parsed.body_child_qname.localname == "Ping"
    assert parsed.root.tag == f"{{{SOAP12_ENV_NS}}}Envelope"


def test_soap11_envelope_without_header() -> None:
    parsed = parse_envelope(envelope(ns=SOAP11_ENV_NS, header=""), max_bytes=LIMIT)
    assert parsed.soap_version == 11
    assert parsed.header is None
    assert parsed.body_child.text == "1"


def test_xml_declaration_and_comments_are_fine() -> None:
    data = envelope(prolog='<?xml version="1.0" encoding="UTF-8"?><!-- hi -->')
    assert parse_envelope(data, max_bytes=LIMIT).soap_version == 12


def test_utf16_envelope_is_accepted() -> None:
    text = '<?xml version="1.0" encoding="UTF-16"?>' + envelope().decode()
    assert parse_envelope(text.encode("utf-16"), max_bytes=LIMIT).body_child.text == "1"


def test_size_is_checked_before_parsing() -> None:
    # Garbage over the limit must be refused for its size, proving no parse was attempted.
    with pytest.raises(RequestTooLarge):
        parse_envelope(b"<" * (LIMIT + 1), max_bytes=LIMIT)
    data = envelope()
    assert parse_envelope(data, max_bytes=len(data)).soap_version == 12
    with pytest.raises(RequestTooLarge):
        parse_envelope(data, max_bytes=len(data) - 1)


@pytest.mark.parametrize("data", [BILLION_LAUGHS, XXE], ids=["billion-laughs", "xxe"])
def test_dtd_and_entities_are_forbidden(data: bytes) -> None:
    with pytest.raises(ForbiddenXmlConstruct) as info:
        parse_envelope(data, max_bytes=LIMIT)
    assert info.value.code == "SP-102"


@pytest.mark.parametrize("marker", ["<!DOCTYPE x>", "<!ENTITY x 'y'>"])
@pytest.mark.parametrize("where", ["comment", "cdata"])
def test_dtd_markers_are_refused_before_parsing_wherever_they_are(marker: str, where: str) -> None:
    # Inside a comment or CDATA the parsed tree would show nothing: only the byte check sees it.
    hidden = f"<!-- {marker} -->" if where == "comment" else f"<![CDATA[{marker}]]>"
    data = envelope(body=f'<x:Ping xmlns:x="urn:test">{hidden}</x:Ping>')
    with pytest.raises(ForbiddenXmlConstruct, match="document type declaration"):
        parse_envelope(data, max_bytes=LIMIT)
    harmless = data.replace(b"<!DOCTYPE", b"DOCTYPE").replace(b"<!ENTITY", b"ENTITY")
    assert parse_envelope(harmless, max_bytes=LIMIT).soap_version == 12


def test_dtd_in_utf16_is_forbidden_after_parsing() -> None:
    # The byte pre-check cannot see an UTF-16 DOCTYPE; the parsed tree's DTD gives it away.
    text = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE s:Envelope>' + envelope().decode()
    with pytest.raises(ForbiddenXmlConstruct):
        parse_envelope(text.encode("utf-16"), max_bytes=LIMIT)


@pytest.mark.parametrize(
    "data",
    [
        envelope(prolog="<?evil x?>"),
        envelope(body='<x:Ping xmlns:x="urn:test"><?evil x?></x:Ping>'),
        envelope() + b"<?evil x?>",
    ],
    ids=["prolog", "body", "trailing"],
)
def test_processing_instructions_are_forbidden(data: bytes) -> None:
    with pytest.raises(ForbiddenXmlConstruct):
        parse_envelope(data, max_bytes=LIMIT)


@pytest.mark.parametrize("data", [b"", b"   ", b"hello", b"<a><b></a>", envelope()[:-5]])
def test_malformed_xml(data: bytes) -> None:
    with pytest.raises(MalformedXml) as info:
        parse_envelope(data, max_bytes=LIMIT)
    assert info.value.code == "SP-101"


def test_malformed_xml_text_does_not_echo_content() -> None:
    data = envelope(body="<x:Cpr xmlns:x='urn:test'>0101901234</x:Cpr").replace(b"</s:Body>", b"")
    with pytest.raises(MalformedXml) as info:
        parse_envelope(data, max_bytes=LIMIT)
    assert "0101901234" not in info.value.error_text
    assert "line 1" in info.value.error_text


def test_excessive_nesting_is_refused() -> None:
    # huge_tree stays off, so libxml2's depth limit protects the stack.
    deep = "<a>" * 100_000 + "</a>" * 100_000
    with pytest.raises(MalformedXml):
        parse_envelope(envelope(body=deep), max_bytes=10 * 1024 * 1024)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"<Envelope/>", "not a SOAP Envelope"),
        (b'<s:Envelop xmlns:s="http://www.w3.org/2003/05/soap-envelope"/>', "not a SOAP"),
        (b'<s:Envelope xmlns:s="urn:other"><s:Body/></s:Envelope>', "not a SOAP"),
        (
            envelope().replace(b"<s:Body>", b"<s:Bodi>").replace(b"</s:Body>", b"</s:Bodi>"),
            "unexpected",
        ),
        (envelope(body=""), "exactly one element, found 0"),
        (envelope(body="<a/><b/>"), "exactly one element, found 2"),
        (envelope(header="<s:Header/><s:Header/>"), "unexpected"),
        (envelope().replace(b"</s:Envelope>", b"<s:Body><a/></s:Body></s:Envelope>"), "unexpected"),
        (envelope().replace(b"</s:Envelope>", b"<extra/></s:Envelope>"), "unexpected"),
        (
            b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Header/>'
            b"</s:Envelope>",
            "no Body",
        ),
    ],
)
def test_not_a_soap_envelope(data: bytes, fragment: str) -> None:
    with pytest.raises(NotSoapEnvelope) as info:
        parse_envelope(data, max_bytes=LIMIT)
    assert fragment in info.value.error_text


def test_soap11_allows_trailing_extension_elements() -> None:
    data = envelope(ns=SOAP11_ENV_NS).replace(b"</s:Envelope>", b"<ext/></s:Envelope>")
    assert parse_envelope(data, max_bytes=LIMIT).soap_version == 11


def test_parse_xml_returns_any_root() -> None:
    assert parse_xml(b"<a><b/></a>", max_bytes=LIMIT).tag == "a"


def test_parser_is_safe_across_threads() -> None:
    results: list[str] = []
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(200):
                body = f'<x:Ping xmlns:x="urn:test">{n}-{i}</x:Ping>'
                results.append(
                    parse_envelope(envelope(body=body), max_bytes=LIMIT).body_child.text or ""
                )
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(results) == 1600
    assert len(set(results)) == 1600
