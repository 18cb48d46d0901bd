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

Each request goes through the platform's transport (mutual TLS with the agreement's
certificate, retries with backoff on connection errors and 5xx within ``PART_BUDGET_SECONDS``).
Parts are yielded as they arrive, so a caller can store them without holding the list.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote

from lxml import etree

from integrations.sf2250.register_errors import REGISTER_ANSWERS
from serviceplatform.errors import ServicePlatformError, UpstreamBadResponse
from serviceplatform.outbound.base import OutboundRequest, Transport
from serviceplatform.outbound.credentials import ClientCertificate
from serviceplatform.soap.envelope import parse_xml

log = logging.getLogger(__name__)

REGISTER_NS: Final = "urn:sandbox:nemsms:register:1.0"
#: One part of a list may take longer than a SOAP call's 1 s SLA; the night has time.
PART_BUDGET_SECONDS: Final = 30.0
_MAX_PART_BYTES: Final = 32 * 1024 * 1024
_HEADERS: Final = {"Accept": "application/xml"}


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


class SubscriptionListClient:
    def __init__(self, transport: Transport, *, cert_alias: str) -> None:
        self._transport = transport
        self._credential = ClientCertificate(cert_alias)

    def _get(self, path: str) -> bytes:
        request = OutboundRequest(
            method="GET",
            path=path,
            headers=_HEADERS,
            budget_seconds=PART_BUDGET_SECONDS,
            answer_check=REGISTER_ANSWERS,
        )
        return self._transport.send(request, credential=self._credential).body

    def reference(self, sysid: str) -> ListReference:
        root = _document(self._get(_path(sysid)), "SlutbrugerlisteReference")
        reference = (root.findtext(f"{{{REGISTER_NS}}}ReferenceId") or "").strip()
        if not reference:
            raise UpstreamBadResponse("the register's list reference has no ReferenceId")
        return ListReference(reference, _count(root, "AntalDele"), _count(root, "AntalSlutbrugere"))

    def part(self, sysid: str, reference: str, number: int) -> list[tuple[str, str]]:
        """The ``(kind, number)`` entries of part ``number``; kind is ``cpr`` or ``cvr``."""
        root = _document(
            self._get(_path(sysid, reference, "dele", str(number))), "SlutbrugerDelliste"
        )
        entries: list[tuple[str, str]] = []
        for slutbruger in root.iterchildren(f"{{{REGISTER_NS}}}Slutbruger"):
            cpr = (slutbruger.findtext(f"{{{REGISTER_NS}}}CPR") or "").strip()
            cvr = (slutbruger.findtext(f"{{{REGISTER_NS}}}CVR") or "").strip().lstrip(":")
            if len(cpr) == 10 and cpr.isdigit() and not cvr:
                entries.append(("cpr", cpr))
            elif len(cvr) == 8 and cvr.isdigit() and not cpr:
                entries.append(("cvr", cvr))
            else:
                raise UpstreamBadResponse(f"part {number} holds an entry that is no CPR or CVR")
        return entries

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

    def read(self, sysid: str) -> tuple[ListReference, Iterator[list[tuple[str, str]]]]:
        """The list's reference and an iterator over its parts' entries (then deleted)."""
        reference = self.reference(sysid)

        def parts() -> Iterator[list[tuple[str, str]]]:
            for number in range(1, reference.parts + 1):
                yield self.part(sysid, reference.reference, number)
            self.delete(sysid, reference.reference)

        return reference, parts()
