"""The preview space of the simulated providers: real HTML pages a script can click through.

A provider that asks for a preview opens a ``PreviewSession`` (state ``pending``) and answers
the first request with its location, ``{preview_base_url}/{token}``, an ``https://`` URL as
``PreviewLocation`` must be. The portal redirects the user there, usually adding where to come
back to:

- ``GET /preview/{token}?returnUrl=<portal address>`` (``returnurl`` is accepted too, the TDD
  1.x spelling): the page shows what would be shared (provider, evidence type, subject, the
  document itself inline for text formats, a link to ``/preview/{token}/document``) and a form
  with two submit buttons, ``decision=approve`` and ``decision=decline``, and the return
  address as a hidden ``returnUrl`` field;
- ``POST /preview/{token}`` (``application/x-www-form-urlencoded``, ``decision`` and
  ``returnUrl``): records the choice, then ``303 See Other`` to ``returnUrl`` if given, else to
  the v2.0 ``ReturnLocation`` of a second request already received for the session, else a
  ``200`` confirmation page. A second choice on a decided session answers ``409``.

``requests`` follows the whole thing: ``session.get(location, params={"returnUrl": url})``,
then ``session.post(location, data={"decision": "approve", "returnUrl": url})`` lands on the
portal's page. The sessions are kept in memory (``PreviewStore``), which the providers and the
test hooks (``GET /_sandbox/previews``) read.
"""

from __future__ import annotations

import html
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from integrations.oots.edm import LegalPerson, NaturalPerson
from integrations.oots.edm.model import Subject
from serviceplatform.sandbox.httpserver import QuietHandler

PreviewState = Literal["pending", "approved", "declined"]
PREVIEW_PATH = "/preview"
_TEXT_FORMATS = ("application/json", "application/xml", "text/")


@dataclass(frozen=True)
class PreviewDocument:
    """The document the user previews: exactly what the provider will send when approved."""

    content: bytes
    mime_type: str
    filename: str


@dataclass
class PreviewSession:
    token: str
    location: str
    provider_id: str
    provider_name: str
    conversation_id: str
    request_id: str
    subject: Subject
    evidence_type: str
    evidence_title: str
    document: PreviewDocument
    created_at: datetime
    state: PreviewState = "pending"
    decided_at: datetime | None = None
    #: Monotonic time of the decision (answer scheduling).
    decided_clock: float | None = None
    #: The evidence was delivered on a second request; the location is spent.
    used: bool = False
    #: v2.0 ``ReturnLocation`` of a second request (where to send the user back).
    return_location: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "location": self.location,
            "provider": self.provider_id,
            "conversation_id": self.conversation_id,
            "request_id": self.request_id,
            "subject": subject_name(self.subject),
            "evidence_type": self.evidence_type,
            "state": self.state,
            "used": self.used,
            "created_at": self.created_at.isoformat(),
            "decided_at": None if self.decided_at is None else self.decided_at.isoformat(),
            "return_location": self.return_location,
        }


def subject_name(subject: Subject) -> str:
    if isinstance(subject, NaturalPerson):
        return f"{subject.given_name} {subject.family_name}"
    assert isinstance(subject, LegalPerson)
    return subject.legal_name


@dataclass
class PreviewStore:
    """Every preview session, by token; thread-safe."""

    clock: Callable[[], float]
    base_url: str = ""
    sessions: dict[str, PreviewSession] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def open(
        self,
        *,
        provider_id: str,
        provider_name: str,
        conversation_id: str,
        request_id: str,
        subject: Subject,
        evidence_type: str,
        evidence_title: str,
        document: PreviewDocument,
    ) -> PreviewSession:
        token = secrets.token_urlsafe(18)
        session = PreviewSession(
            token=token,
            location=f"{self.base_url}/{token}",
            provider_id=provider_id,
            provider_name=provider_name,
            conversation_id=conversation_id,
            request_id=request_id,
            subject=subject,
            evidence_type=evidence_type,
            evidence_title=evidence_title,
            document=document,
            created_at=datetime.now(UTC),
        )
        with self.lock:
            self.sessions[token] = session
        return session

    def find(self, location: str) -> PreviewSession | None:
        """The session a ``PreviewLocation`` names (exact URL, else its last path segment)."""
        with self.lock:
            for session in self.sessions.values():
                if session.location == location.strip():
                    return session
            token = urlsplit(location.strip()).path.rstrip("/").rsplit("/", 1)[-1]
            return self.sessions.get(token)

    def get(self, token: str) -> PreviewSession | None:
        with self.lock:
            return self.sessions.get(token)

    def decide(self, token: str, approve: bool) -> tuple[PreviewSession | None, bool]:
        """Record the user's choice: (session, whether this call decided it). The session is
        None for an unknown token; a session decided before is returned unchanged."""
        with self.lock:
            session = self.sessions.get(token)
            if session is None or session.state != "pending":
                return session, False
            session.state = "approved" if approve else "declined"
            session.decided_at = datetime.now(UTC)
            session.decided_clock = self.clock()
            return session, True

    def as_json(self) -> list[dict[str, Any]]:
        with self.lock:
            return [session.as_json() for session in self.sessions.values()]


def preview_handler(
    store: PreviewStore, fault: Callable[[], int | str | None]
) -> type[QuietHandler]:
    """The handler class of the preview server (HTTPS) over ``store``.

    ``fault`` answers an injected fault for this request (an HTTP status, ``"reset"``) or None.
    """
    return type(
        "PreviewHandler", (_PreviewHandler,), {"store": store, "fault": staticmethod(fault)}
    )


class _PreviewHandler(QuietHandler):
    store: ClassVar[PreviewStore]
    fault: ClassVar[Any]

    def do_GET(self) -> None:  # noqa: N802 - http.server dispatch name
        if self._faulted():
            return
        parts = urlsplit(self.path)
        token, document = self._token(parts.path)
        session = None if token is None else self.store.get(token)
        if session is None:
            self._page(404, "Unknown preview", "<p>This preview link is unknown or expired.</p>")
            return
        if document:
            self.send_body(
                200,
                session.document.content,
                session.document.mime_type,
                {"Content-Disposition": f'inline; filename="{session.document.filename}"'},
            )
            return
        return_url = _return_url(parse_qs(parts.query))
        self._page(200, f"Preview: {session.evidence_title}", _preview_html(session, return_url))

    def do_POST(self) -> None:  # noqa: N802 - http.server dispatch name
        body = self.read_body()
        if body is None or self._faulted():
            return
        token, document = self._token(urlsplit(self.path).path)
        if token is None or document or self.store.get(token) is None:
            self._page(404, "Unknown preview", "<p>This preview link is unknown or expired.</p>")
            return
        form = parse_qs(body.decode("utf-8", "replace"))
        decision = (form.get("decision") or [""])[0]
        if decision not in ("approve", "decline"):
            self._page(400, "Choose", "<p>Choose <b>approve</b> or <b>decline</b>.</p>")
            return
        session, decided = self.store.decide(token, decision == "approve")
        assert session is not None
        if not decided:
            self._page(
                409,
                "Already decided",
                f"<p>This preview was already <b>{html.escape(session.state)}</b>.</p>",
            )
            return
        target = _return_url(form) or session.return_location
        if target:
            self.send_body(303, b"", headers={"Location": target})
            return
        self._page(
            200,
            "Thank you",
            f'<p id="outcome">You have <b>{html.escape(session.state)}</b> sharing the '
            f"{html.escape(session.evidence_title)}. You may close this page and return to the "
            "service you came from.</p>",
        )

    def _token(self, path: str) -> tuple[str | None, bool]:
        if not path.startswith(PREVIEW_PATH + "/"):
            return None, False
        segments = unquote(path.removeprefix(PREVIEW_PATH + "/")).strip("/").split("/")
        if len(segments) == 1 and segments[0]:
            return segments[0], False
        if len(segments) == 2 and segments[1] == "document":
            return segments[0], True
        return None, False

    def _faulted(self) -> bool:
        return self.answer_injected(self.fault())

    def _page(self, status: int, title: str, content: str) -> None:
        page = (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title></head>"
            f"<body><h1>{html.escape(title)}</h1>\n{content}\n</body></html>\n"
        )
        self.send_body(status, page.encode(), "text/html; charset=utf-8")


def _return_url(values: dict[str, list[str]]) -> str | None:
    """The portal's return address (``returnUrl`` or ``returnurl``), if an http(s) URL."""
    for name in ("returnUrl", "returnurl"):
        for value in values.get(name, []):
            if urlsplit(value).scheme in ("http", "https"):
                return value
    return None


def _preview_html(session: PreviewSession, return_url: str | None) -> str:
    e = html.escape
    document = session.document
    if document.mime_type.startswith(_TEXT_FORMATS):
        shown = f'<pre id="document">{e(document.content.decode("utf-8", "replace"))}</pre>'
    else:
        size = len(document.content)
        shown = f'<p id="document">A {e(document.mime_type)} document ({size} bytes).</p>'
    hidden = f'<input type="hidden" name="returnUrl" value="{e(return_url)}">' if return_url else ""
    state = ""
    if session.state != "pending":
        state = f'<p id="state">Already <b>{e(session.state)}</b>.</p>'
    return (
        f"<p>{e(session.provider_name)} will share the following evidence with the authority "
        "that asked for it, if you approve.</p>\n"
        "<dl>"
        f'<dt>Evidence</dt><dd id="evidence-type">{e(session.evidence_title)}</dd>'
        f'<dt>About</dt><dd id="subject">{e(subject_name(session.subject))}</dd>'
        f"<dt>Format</dt><dd>{e(document.mime_type)}</dd>"
        "</dl>\n"
        f'{shown}\n<p><a href="{e(session.location)}/document">Open the document '
        f"({e(document.filename)})</a></p>\n{state}"
        f'<form id="decision" method="post" action="{e(session.location)}">{hidden}'
        '<button type="submit" name="decision" value="approve">Approve</button> '
        '<button type="submit" name="decision" value="decline">Decline</button>'
        "</form>"
    )
