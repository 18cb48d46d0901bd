"""The simulated NemSMS register's shared state and vocabulary.

Both of the register's servers (the OIOREST resources and the ``/_sandbox`` test hooks) work
on one :class:`RegisterState`; this module also holds what both need to read requests and
answer errors: the end-user key, the SysID and CPR/CVR formats and the ``dkal:Fejl`` answer.
Resources, codes and formats: ``docs/nemsms-register.md``.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote
from xml.sax.saxutils import escape

__all__ = [
    "CPR",
    "CVR",
    "FEJL_NS",
    "REGISTER_NS",
    "SYSID",
    "XML_TYPE",
    "EndUser",
    "ListSnapshot",
    "RegisterFault",
    "RegisterState",
    "Subject",
    "fejl_xml",
    "parse_end_user",
]

FEJL_NS = "urn:oio:dkal:1.0.0"
REGISTER_NS = "urn:sandbox:nemsms:register:1.0"
XML_TYPE = "application/xml; charset=utf-8"

SYSID = re.compile(r"[A-Za-z0-9._-]{1,64}")
CPR = re.compile(r"[0-9]{10}")
#: A CVR number, optionally written with a leading colon; group 1 is the 8 digits.
CVR = re.compile(r":?([0-9]{8})")

#: An end user's key: ("cpr", 10 digits) or ("cvr", 8 digits).
Subject = tuple[str, str]


class RegisterFault(Exception):
    """A register error answer: HTTP status plus the ``dkal:Fejl`` code and text."""

    def __init__(
        self, status: int, code: int, text: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(text)
        self.status, self.code, self.text = status, code, text
        self.headers = headers or {}


def fejl_xml(code: int, text: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<dkal:Fejl xmlns:dkal="{FEJL_NS}">'
        f"<dkal:FejlKode>{code}</dkal:FejlKode><dkal:FejlTekst>{escape(text)}</dkal:FejlTekst>"
        "</dkal:Fejl>"
    ).encode()


@dataclass
class EndUser:
    stamdata: bytes
    #: Last ``Myndighedstilmelding`` value; None until one was received.
    tilmeldt: bool | None = None


@dataclass(frozen=True)
class ListSnapshot:
    sysid: str
    entries: tuple[Subject, ...]


class RegisterState:
    """Everything both servers share; every access holds ``lock``."""

    def __init__(self, known_sysids: set[str] | None, max_recorded: int, part_size: int) -> None:
        self.lock = threading.Lock()
        self.known_sysids = frozenset(known_sysids) if known_sysids is not None else None
        self.part_size = part_size
        self.requests: deque[dict[str, Any]] = deque(maxlen=max_recorded)
        self.requests_received = 0
        self.users: dict[Subject, EndUser] = {}
        self.subscriptions: dict[str, tuple[list[str], list[str]]] = {}
        self.snapshots: dict[str, ListSnapshot] = {}
        self.fault: int | str | None = None
        self.fault_remaining = 0

    def record(self, entry: dict[str, Any]) -> int | str | None:
        """Remember one register request; return the fault it must answer with, if any."""
        with self.lock:
            self.requests.append(entry)
            self.requests_received += 1
            if self.fault_remaining > 0:
                self.fault_remaining -= 1
                return self.fault
            return None


def parse_end_user(raw: str) -> Subject:
    """The end user named by a (percent-encoded) path segment; ``RegisterFault`` 1001 if none."""
    value = unquote(raw)
    if CPR.fullmatch(value):
        return ("cpr", value)
    match = CVR.fullmatch(value)
    if match:
        return ("cvr", match.group(1))
    raise RegisterFault(400, 1001, "the end user must be a CPR (10 digits) or CVR (8 digits)")
