"""Reading an authority's NemSMS subscription list from the register, part by part.

The register's table of contents names *Hent reference til slutbrugerliste* (get a reference
to the end-user list), *Hent slutbruger delliste* (get one part) and *Slet ændringsliste*
(delete the list); their real format is not public. This module is the one place that knows
the resource model the sandbox register offers (``docs/nemsms-register.md``):

* ``GET /register/{sysid}/slutbrugerliste`` -> ``SlutbrugerlisteReference{ReferenceId,
  AntalDele, AntalSlutbrugere}``: a snapshot of the list, taken now;
* ``GET /register/{sysid}/slutbrugerliste/{ref}/dele/{n}`` -> ``SlutbrugerDelliste`` with
  ``Slutbruger{CPR | CVR}`` entries, ``n`` from 1 to ``AntalDele``;
* ``DELETE /register/{sysid}/slutbrugerliste/{ref}`` when done (best effort).

A part is read in one of two ways, with the same result and the same refusals. The form the
register writes (no whitespace, no prefixes, every entry ``<Slutbruger><CPR>`` ten digits or
``<CVR>`` eight, optionally after a colon) is recognised by one regular expression over the whole
body, which also proves it well-formed, and its numbers are read without building a tree: that
was most of the platform's CPU for a national list. Any other body (another spelling of the
same XML, or one with a bad entry) goes through the hardened XML parser and is read element by
element as before, so a bad entry refuses the part whichever way it is spelt.

Each request goes through the platform's transport (mutual TLS with the agreement's
certificate, retries with backoff on connection errors and 5xx), with a timeout for its kind
(:class:`ListTimeouts`): the register needs seconds to answer a list reference for a national
list, whereas ``[peers.nemsms]`` keeps a single SOAP call's short SLA. Parts are yielded as
they arrive, so a caller can store them without holding the list.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote

from lxml import etree

from integrations.sf2250.entry_codes import CVR_OFFSET, code_of
from integrations.sf2250.register_errors import REGISTER_ANSWERS
from serviceplatform.errors import ServicePlatformError, UpstreamBadResponse
from serviceplatform.outbound.base import OutboundRequest, Transport
from serviceplatform.outbound.credentials import ClientCertificate
from serviceplatform.soap.envelope import parse_xml

log = logging.getLogger(__name__)

REGISTER_NS: Final = "urn:sandbox:nemsms:register:1.0"
#: Attempts per request of the night (the first and two retries) within its budget.
_ATTEMPTS: Final = 3
_MAX_PART_BYTES: Final = 32 * 1024 * 1024
_HEADERS: Final = {"Accept": "application/xml"}
_SLUTBRUGER: Final = f"{{{REGISTER_NS}}}Slutbruger"
#: Element of an entry -> (kind, digits).
_KINDS: Final = {f"{{{REGISTER_NS}}}CPR": ("cpr", 10), f"{{{REGISTER_NS}}}CVR": ("cvr", 8)}
#: A whole part in the register's own spelling, its entries in group ``entries``. Only ASCII
#: names, digits and XML whitespace, so a match is a well-formed document (no DTD, no PI, no
#: entity) with ``SlutbrugerDelliste`` in the register's namespace as its root.
_PLAIN_PART: Final = re.compile(
    rb'(?:<\?xml version="1\.0" encoding="UTF-8"\?>[ \t\r\n]*)?'
    + re.escape(f'<SlutbrugerDelliste xmlns="{REGISTER_NS}">'.encode())
    + rb"(?:<(ReferenceId|DelNummer|AntalDele)>[A-Za-z0-9-]*</\1>)*"
    # Possessive (*+): an entry that fails ends the match at once, without backtracking.
    + rb"(?P<entries>(?:<Slutbruger><C(?:PR>[0-9]{10}</CPR|VR>:?[0-9]{8}</CVR)></Slutbruger>)*+)"
    + rb"</SlutbrugerDelliste>[ \t\r\n]*"
)
#: The digits that, written before a CVR number's eight, spell its code: "100" + "29189846"
#: is 10**10 + 29189846, so a CVR number is coded with one ``int()`` like a CPR number.
_CVR_CODE_PREFIX: Final = str(CVR_OFFSET // 10**8).encode()
#: Every byte but a digit -> a space: the entries of a plain part then split into its numbers.
_DIGITS_ONLY: Final = bytes(byte if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))


@dataclass(frozen=True)
class ListTimeouts:
    """Seconds one attempt may wait, per kind of request (``[subscriptions]`` settings)."""

    reference: float = 60.0
    part: float = 30.0
    #: Parts requested ahead of the one being stored.
    parts_in_flight: int = 4

    def request(self, path: str, kind: str) -> OutboundRequest:
        seconds = self.reference if kind == "reference" else self.part
        return OutboundRequest(
            method="GET",
            path=path,
            headers=_HEADERS,
            read_timeout_seconds=seconds,
            budget_seconds=seconds * _ATTEMPTS,
            answer_check=REGISTER_ANSWERS,
        )


@dataclass(frozen=True)
class ListReference:
    reference: str
    parts: int
    entries: int


def _path(sysid: str, *rest: str) -> str:
    tail = "".join(f"/{quote(part, safe='')}" for part in rest)
    return f"/register/{quote(sysid, safe='')}/slutbrugerliste{tail}"


def _document(body: bytes, root_name: str) -> etree._Element:
    try:
        root = parse_xml(body, max_bytes=_MAX_PART_BYTES)
    except ServicePlatformError:
        raise UpstreamBadResponse(f"the register's {root_name} is not XML") from None
    if root.tag != f"{{{REGISTER_NS}}}{root_name}":
        raise UpstreamBadResponse(f"the register answered {root.tag}, not {root_name}")
    return root


def _count(root: etree._Element, name: str) -> int:
    text = (root.findtext(f"{{{REGISTER_NS}}}{name}") or "").strip()
    if not text.isascii() or not text.isdigit():
        raise UpstreamBadResponse(f"the register's {name} is not a number")
    return int(text)


def plain_part_codes(body: bytes) -> list[int] | None:
    """The coded entries of a part in the register's own spelling; None for any other body."""
    plain = _PLAIN_PART.fullmatch(body) if len(body) <= _MAX_PART_BYTES else None
    if plain is None:
        return None
    entries = plain["entries"]
    if b"<CVR>" in entries:
        # "<CVR>:29189846" -> "<CVR>10029189846": the CVR number's code, 10**10 + itself.
        entries = entries.replace(b"<CVR>:", b"<CVR>")
        entries = entries.replace(b"<CVR>", b"<CVR>" + _CVR_CODE_PREFIX)
    return list(map(int, entries.translate(_DIGITS_ONLY).split()))


def part_codes(root: etree._Element, number: int) -> list[int]:
    """The coded entries of a parsed part; ``UpstreamBadResponse`` for an entry that is no CPR
    (ten digits) or CVR (eight, optionally after a colon) alone in its ``Slutbruger``."""
    codes: list[int] = []
    # One child element per Slutbruger, read by position: findtext per entry made parsing
    # the largest part of fetching a national list.
    for slutbruger in root.iterchildren(_SLUTBRUGER):
        found = _KINDS.get(slutbruger[0].tag) if len(slutbruger) == 1 else None
        if found is not None and (
            len(slutbruger[0])
            or (slutbruger.text or "").strip()
            or (slutbruger[0].tail or "").strip()
        ):
            found = None  # text or elements beside the number: not one number alone
        text = (slutbruger[0].text or "").strip() if found is not None else ""
        if found is not None and found[0] == "cvr":
            text = text.removeprefix(":")
        if found is None or len(text) != found[1] or not text.isdigit() or not text.isascii():
            raise UpstreamBadResponse(f"part {number} holds an entry that is no CPR or CVR")
        codes.append(code_of(found[0], text))
    return codes


class SubscriptionListClient:
    def __init__(
        self, transport: Transport, *, cert_alias: str, timeouts: ListTimeouts | None = None
    ) -> None:
        self._transport = transport
        self._credential = ClientCertificate(cert_alias)
        self._timeouts = timeouts or ListTimeouts()

    def _get(self, path: str, kind: str) -> bytes:
        request = self._timeouts.request(path, kind)
        return self._transport.send(request, credential=self._credential).body

    def reference(self, sysid: str) -> ListReference:
        root = _document(self._get(_path(sysid), "reference"), "SlutbrugerlisteReference")
        reference = (root.findtext(f"{{{REGISTER_NS}}}ReferenceId") or "").strip()
        if not reference:
            raise UpstreamBadResponse("the register's list reference has no ReferenceId")
        return ListReference(reference, _count(root, "AntalDele"), _count(root, "AntalSlutbrugere"))

    def part(self, sysid: str, reference: str, number: int) -> list[int]:
        """The entries of part ``number``, as their codes (``entry_codes.code_of``)."""
        body = self._get(_path(sysid, reference, "dele", str(number)), "part")
        codes = plain_part_codes(body)
        if codes is None:
            codes = part_codes(_document(body, "SlutbrugerDelliste"), number)
        return codes

    def delete(self, sysid: str, reference: str) -> None:
        """Forget the list at the register; a failure only costs the register some memory."""
        request = OutboundRequest(
            method="DELETE",
            path=_path(sysid, reference),
            headers=_HEADERS,
            answer_check=REGISTER_ANSWERS,
        )
        try:
            self._transport.send(request, credential=self._credential)
        except ServicePlatformError as error:
            log.warning("could not delete list reference at the register: %s", error.code)

    def read(self, sysid: str) -> tuple[ListReference, Iterator[list[int]]]:
        """The list's reference and an iterator over its parts' coded entries (then deleted).

        Parts are yielded in order, with up to ``parts_in_flight`` requested ahead: the
        register prepares the next parts while this process stores the last one.
        """
        reference = self.reference(sysid)

        def parts() -> Iterator[list[int]]:
            ahead = max(1, self._timeouts.parts_in_flight)
            pending: deque[Future[list[int]]] = deque()
            numbers = iter(range(1, reference.parts + 1))
            with ThreadPoolExecutor(ahead, thread_name_prefix="list-part") as pool:
                try:
                    for number in numbers:
                        pending.append(pool.submit(self.part, sysid, reference.reference, number))
                        if len(pending) >= ahead:
                            yield pending.popleft().result()
                    while pending:
                        yield pending.popleft().result()
                finally:
                    for future in pending:
                        future.cancel()
            self.delete(sysid, reference.reference)

        return reference, parts()
