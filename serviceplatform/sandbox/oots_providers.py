"""The simulated Evidence Providers: what each answers to an EDM request, and the documents.

The gateway hands a provider the RegRep payload of an ``ExecuteQueryRequest``; the provider
answers with a ``ProviderAnswer`` (the ``query:QueryResponse``, its attachments and the ebMS
action to send it under) or, for a second request whose preview the user has not decided yet,
``AwaitPreview``: the gateway asks again (``settle``) until the user decides or the preview
times out. Answers are written with ``serviceplatform.sandbox.oots_evidence_answers`` in the
provider's EDM version, the one the DSD publishes as its ``sdg:ConformsTo``.

What every provider checks first, in this order (codes from the ``EDMErrorCodes`` list):

1. the payload is a readable EDM ``QueryRequest`` -> else ``EDM:ERR:0003`` (an unsupported
   ``SpecificationIdentifier`` -> ``EDM:ERR:0007``);
2. the request's version is the provider's -> else ``EDM:ERR:0007``;
3. the request's ``EvidenceProvider`` is this provider -> else ``EDM:ERR:0003``;
4. the evidence type is the one it issues -> else ``EDM:ERR:0004``; the requested format is
   the one it distributes -> else ``EDM:ERR:0007``; the subject is a natural person (all
   sandbox evidence is about persons) -> else ``EDM:ERR:0004``.

Then by behaviour (``oots_network.Behaviour``):

- ``DIRECT``: the evidence (FI birth certificate as XML, SE degree certificate as JSON);
- ``ERROR``: always its ``error_code`` (``EDM:ERR:0004``, no record of the subject);
- ``PREVIEW`` (FI degree certificate, a PDF made here):
  - no ``PreviewLocation``, ``PossibilityForPreview`` false -> ``EDM:ERR:0002`` without a
    location (severity ``Error``): this provider shares only after a preview;
  - no ``PreviewLocation``, preview possible -> ``PreviewRequired`` with a new preview session's
    location (``oots_preview``);
  - with ``PreviewLocation``: unknown, or opened for another provider, subject or evidence type
    -> ``EDM:ERR:0006`` (a reference that cannot be resolved); approved -> the evidence (the
    very document the user previewed; the location is then spent, a third request gets
    ``EDM:ERR:0006``); declined -> ``EDM:ERR:0002`` without location ("Missing
    Authorization": the user withheld the authorisation to share); still pending -> wait for
    the decision, ``EDM:ERR:0005`` (timeout) if none comes within the preview timeout.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Final
from uuid import UUID

from lxml import etree

from integrations.oots.edm import (
    EdmParseError,
    EdmVersion,
    Evidence,
    EvidenceMetadata,
    EvidenceRequest,
    LocalizedText,
    NaturalPerson,
    UnsupportedEdmVersion,
    parse_query_request,
)
from integrations.oots.edm.wire import QUERY_NS, RIM_NS, q
from serviceplatform.sandbox.oots_evidence_answers import (
    ResponseContext,
    build_error_response,
    build_evidence_response,
    build_preview_required,
)
from serviceplatform.sandbox.oots_network import (
    Behaviour,
    EvidenceTypeSpec,
    Network,
    ProviderSpec,
)
from serviceplatform.sandbox.oots_preview import PreviewDocument, PreviewSession, PreviewStore

EXECUTE_QUERY_RESPONSE: Final = "ExecuteQueryResponse"
EXCEPTION_RESPONSE: Final = "ExceptionResponse"
#: What a declined preview (and a request that allows none) is answered with.
DECLINED_CODE: Final = "EDM:ERR:0002"
_PARSER: Final = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


@dataclass(frozen=True)
class Attachment:
    content_id: str
    mime_type: str
    data: bytes


@dataclass(frozen=True)
class ProviderAnswer:
    """A provider's answer: the RegRep body, its attachments and the ebMS action."""

    action: str
    version: EdmVersion
    response_id: UUID
    body: bytes
    attachments: tuple[Attachment, ...] = ()
    #: ``evidence``, ``preview`` or the ``EDM:ERR`` code (for the hooks and the logs).
    outcome: str = "evidence"


@dataclass(frozen=True)
class AwaitPreview:
    """The answer waits for the user's decision on preview session ``token``."""

    token: str
    request: EvidenceRequest
    #: Monotonic time the second request arrived (the timeout counts from it).
    since: float


Reaction = ProviderAnswer | AwaitPreview


class SimulatedProvider:
    """One provider of the network, answering as its ``Behaviour`` says."""

    def __init__(self, spec: ProviderSpec, network: Network, previews: PreviewStore) -> None:
        self.spec = spec
        evidence_type = network.evidence_type(spec.evidence_type)
        if evidence_type is None:
            raise ValueError(f"{spec.identifier} issues an unknown evidence type")
        self.evidence_type: EvidenceTypeSpec = evidence_type
        self.previews = previews

    # --- entry points -------------------------------------------------------------------------

    def answer(self, payload: bytes, *, conversation_id: str, now: float) -> Reaction:
        """The reaction to one ``ExecuteQueryRequest`` payload."""
        try:
            request = parse_query_request(payload)
        except UnsupportedEdmVersion as exc:
            if _specification(payload) is None:
                return self._unreadable(
                    payload, "EDM:ERR:0003", "the slot SpecificationIdentifier is missing"
                )
            return self._unreadable(payload, "EDM:ERR:0007", str(exc))
        except EdmParseError as exc:
            return self._unreadable(payload, "EDM:ERR:0003", f"the request cannot be read: {exc}")
        refused = self._check(request)
        if refused is not None:
            return refused
        if self.spec.behaviour is Behaviour.ERROR:
            return self._error(
                request,
                self.spec.error_code,
                detail=f"{self.spec.name} holds no {self._title()} for this person",
            )
        if self.spec.behaviour is Behaviour.DIRECT:
            return self._evidence(request, self._document(request.subject))
        return self._preview_flow(request, conversation_id, now)

    def settle(self, waiting: AwaitPreview, *, now: float, timeout: float) -> ProviderAnswer | None:
        """The answer to a request waiting for a preview, once there is one (else None)."""
        session = self.previews.get(waiting.token)
        if session is None:  # pragma: no cover - sessions are never removed
            return self._error(waiting.request, "EDM:ERR:0006", detail="preview session lost")
        if session.state == "pending":
            if now - waiting.since >= timeout:
                return self._error(
                    waiting.request,
                    "EDM:ERR:0005",
                    detail=f"the user did not finish the preview within {timeout:g} seconds",
                )
            return None
        return self._decided(waiting.request, session)

    # --- the preview flow ---------------------------------------------------------------------

    def _preview_flow(self, request: EvidenceRequest, conversation_id: str, now: float) -> Reaction:
        if request.preview_location is None:
            if not request.possibility_for_preview:
                return self._error(
                    request,
                    DECLINED_CODE,
                    detail=f"{self.spec.name} shares the {self._title()} only after the user's "
                    "preview, and the request allows none (PossibilityForPreview is false)",
                )
            assert isinstance(request.subject, NaturalPerson)  # _check refused the others
            content, mime, filename = self._document(request.subject)
            session = self.previews.open(
                provider_id=self.spec.identifier,
                provider_name=self.spec.name,
                conversation_id=conversation_id,
                request_id=str(request.request_id),
                subject=request.subject,
                evidence_type=self.spec.evidence_type,
                evidence_title=self._title(),
                document=PreviewDocument(content, mime, filename),
            )
            response_id = uuid.uuid4()
            body = build_preview_required(
                request,
                session.location,
                (
                    LocalizedText(
                        f"Review your {self._title()} at {self.spec.name} and approve or "
                        "decline sharing it."
                    ),
                ),
                "GET",
                version=self.spec.version,
                provider=self.spec.agent(),
                response_id=response_id,
            )
            return ProviderAnswer(
                EXCEPTION_RESPONSE, self.spec.version, response_id, body, outcome="preview"
            )
        found = self.previews.find(request.preview_location)
        if found is None:
            return self._error(
                request,
                "EDM:ERR:0006",
                detail=f"no preview session at {request.preview_location}",
            )
        mismatch = self._mismatch(request, found)
        if mismatch is not None:
            return self._error(request, "EDM:ERR:0006", detail=mismatch)
        if request.return_location is not None:
            found.return_location = request.return_location
        if found.state == "pending":
            return AwaitPreview(found.token, request, now)
        return self._decided(request, found)

    def _mismatch(self, request: EvidenceRequest, session: PreviewSession) -> str | None:
        if session.provider_id != self.spec.identifier:
            return "the preview session belongs to another provider"
        if session.evidence_type != request.evidence_type.classification:
            return "the preview session was opened for another evidence type"
        first, second = session.subject, request.subject
        if not (
            isinstance(first, NaturalPerson)
            and isinstance(second, NaturalPerson)
            and (first.family_name, first.given_name, first.date_of_birth)
            == (second.family_name, second.given_name, second.date_of_birth)
        ):
            return "the preview session was opened for another person"
        return None

    def _decided(self, request: EvidenceRequest, session: PreviewSession) -> ProviderAnswer:
        if session.state == "declined":
            return self._error(
                request,
                DECLINED_CODE,
                detail="the user declined to share the evidence in the preview space",
            )
        with self.previews.lock:
            spent, session.used = session.used, True
        if spent:
            return self._error(
                request,
                "EDM:ERR:0006",
                detail="this preview location was used already; start a new request",
            )
        document = session.document
        return self._evidence(request, (document.content, document.mime_type, document.filename))

    # --- answers ------------------------------------------------------------------------------

    def _check(self, request: EvidenceRequest) -> ProviderAnswer | None:
        spec = self.spec
        if request.version is not spec.version:
            return self._error(
                request,
                "EDM:ERR:0007",
                detail=f"{spec.name} speaks {spec.version.value} only (see the DSD's ConformsTo), "
                f"the request is {request.version.value}",
            )
        if (request.provider.identifier, request.provider.scheme) != (spec.identifier, spec.scheme):
            return self._error(
                request,
                "EDM:ERR:0003",
                detail=f"the request names the provider {request.provider.identifier} "
                f"({request.provider.scheme}) but was delivered to {spec.identifier} "
                f"({spec.scheme})",
            )
        if request.evidence_type.classification != spec.evidence_type:
            return self._error(
                request,
                "EDM:ERR:0004",
                detail=f"{spec.name} does not issue the evidence type "
                f"{request.evidence_type.classification}",
            )
        if request.evidence_type.format != self.evidence_type.format:
            return self._error(
                request,
                "EDM:ERR:0007",
                detail=f"{spec.name} distributes this evidence as {self.evidence_type.format} "
                f"only, not {request.evidence_type.format}",
            )
        if not isinstance(request.subject, NaturalPerson):
            return self._error(
                request, "EDM:ERR:0004", detail=f"{spec.name} holds evidence about persons only"
            )
        return None

    def _title(self) -> str:
        return self.evidence_type.titles[0].value.lower()

    def _error(
        self, request: EvidenceRequest | ResponseContext, code: str, *, detail: str
    ) -> ProviderAnswer:
        response_id = uuid.uuid4()
        body = build_error_response(
            request,
            code,
            detail=detail,
            version=self.spec.version,
            provider=self.spec.agent(),
            response_id=response_id,
        )
        return ProviderAnswer(
            EXCEPTION_RESPONSE, self.spec.version, response_id, body, outcome=code
        )

    def _unreadable(self, payload: bytes, code: str, detail: str) -> ProviderAnswer:
        """An error answer to a payload that is no readable request: its ``@id`` if any."""
        request_id = "urn:uuid:00000000-0000-0000-0000-000000000000"
        try:
            root = etree.fromstring(payload, _PARSER)
            if root.tag == q(QUERY_NS, "QueryRequest") and root.get("id"):
                request_id = str(root.get("id"))
        except etree.XMLSyntaxError:
            pass
        return self._error(ResponseContext(request_id, self.spec.version), code, detail=detail)

    def _evidence(
        self, request: EvidenceRequest, document: tuple[bytes, str, str]
    ) -> ProviderAnswer:
        content, mime, filename = document
        spec = self.spec
        evidence = Evidence(
            content=content,
            mime_type=mime,
            content_id=f"{uuid.uuid4()}@{spec.identifier.lower()}.oots.sandbox",
            filename=filename,
            metadata=EvidenceMetadata(
                identifier=str(uuid.uuid4()),
                evidence_type_classification=spec.evidence_type,
                evidence_type_titles=self.evidence_type.titles,
                issuing_authority=spec.agent(),
                issuing_date=datetime.now(UTC).date(),
                format=mime,
                subject=request.subject,
            ),
        )
        response_id = uuid.uuid4()
        body, attachments = build_evidence_response(
            request,
            evidence,
            version=spec.version,
            provider=spec.agent(),
            response_id=response_id,
        )
        parts = tuple(Attachment(cid, mime, data) for cid, data in attachments.items())
        return ProviderAnswer(EXECUTE_QUERY_RESPONSE, spec.version, response_id, body, parts)

    def _document(self, subject: object) -> tuple[bytes, str, str]:
        assert isinstance(subject, NaturalPerson)
        fmt = self.evidence_type.format
        if fmt == "application/pdf":
            return degree_pdf(subject, self.spec.name), fmt, "degree-certificate.pdf"
        if fmt == "application/json":
            return degree_json(subject, self.spec.name), fmt, "degree-certificate.json"
        region = self.evidence_type.jurisdiction
        place = region.regions.get(self.spec.region or "", "") if region else ""
        return birth_xml(subject, self.spec.name, place), fmt, "birth-certificate.xml"


def _specification(payload: bytes) -> str | None:
    """The ``SpecificationIdentifier`` of a request that could not be read, if it has one."""
    try:
        root = etree.fromstring(payload, _PARSER)
    except etree.XMLSyntaxError:
        return None
    for slot in root.iterchildren(q(RIM_NS, "Slot")):
        if slot.get("name") == "SpecificationIdentifier":
            return "".join(str(t) for t in slot.itertext()).strip() or None
    return None


def providers_of(network: Network, previews: PreviewStore) -> dict[str, SimulatedProvider]:
    """Every provider of ``network``, by identifier."""
    return {p.identifier: SimulatedProvider(p, network, previews) for p in network.providers}


# --- the documents ---------------------------------------------------------------------------


def _pdf_text(value: str) -> str:
    encoded = value.encode("latin-1", "replace").decode("latin-1")
    return encoded.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def pdf_document(title: str, lines: list[str]) -> bytes:
    """A small, valid one-page PDF 1.4 with ``title`` and ``lines`` in Helvetica."""
    text = ["BT", "/F1 18 Tf", "72 770 Td", f"({_pdf_text(title)}) Tj", "/F1 11 Tf", "0 -32 Td"]
    for line in lines:
        text += [f"({_pdf_text(line)}) Tj", "0 -16 Td"]
    text.append("ET")
    stream = "\n".join(text).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Title (%s) /Producer (serviceplatform OOTS sandbox) >>"
        % _pdf_text(title).encode("latin-1"),
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 6 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def degree_pdf(person: NaturalPerson, issuer: str) -> bytes:
    return pdf_document(
        "Higher education degree certificate",
        [
            issuer,
            "",
            f"This certifies that {person.given_name} {person.family_name},",
            f"born {person.date_of_birth.isoformat()}, has been awarded the degree of",
            "Master of Science (Technology) on 2019-06-14.",
            "",
            "Sandbox document made by the simulated OOTS network: not a real certificate.",
        ],
    )


def degree_json(person: NaturalPerson, issuer: str) -> bytes:
    document = {
        "documentType": "Degree certificate",
        "issuer": issuer,
        "holder": {
            "givenName": person.given_name,
            "familyName": person.family_name,
            "dateOfBirth": person.date_of_birth.isoformat(),
        },
        "degree": {
            "title": "Master of Science in Engineering",
            "awarded": "2018-06-08",
            "credits": 300,
        },
        "sandbox": True,
    }
    return json.dumps(document, ensure_ascii=False, indent=2).encode()


BIRTH_NS: Final = "urn:sandbox:oots:fi:birth-certificate:1"


def birth_xml(person: NaturalPerson, issuer: str, place: str) -> bytes:
    # Parsed from text for a default namespace (lxml-stubs type nsmap keys as str).
    root = etree.fromstring(f'<BirthCertificate xmlns="{BIRTH_NS}"/>')
    etree.SubElement(root, q(BIRTH_NS, "Issuer")).text = issuer
    etree.SubElement(root, q(BIRTH_NS, "IssueDate")).text = date.today().isoformat()
    child = etree.SubElement(root, q(BIRTH_NS, "Person"))
    etree.SubElement(child, q(BIRTH_NS, "GivenName")).text = person.given_name
    etree.SubElement(child, q(BIRTH_NS, "FamilyName")).text = person.family_name
    etree.SubElement(child, q(BIRTH_NS, "DateOfBirth")).text = person.date_of_birth.isoformat()
    etree.SubElement(child, q(BIRTH_NS, "PlaceOfBirth")).text = place or "Finland"
    etree.SubElement(
        root, q(BIRTH_NS, "Note")
    ).text = "Sandbox document made by the simulated OOTS network: not a real certificate."
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


__all__ = [
    "DECLINED_CODE",
    "EXCEPTION_RESPONSE",
    "EXECUTE_QUERY_RESPONSE",
    "Attachment",
    "AwaitPreview",
    "ProviderAnswer",
    "Reaction",
    "SimulatedProvider",
    "birth_xml",
    "degree_json",
    "degree_pdf",
    "pdf_document",
    "providers_of",
]
