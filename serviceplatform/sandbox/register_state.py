"""The simulated NemSMS register's shared state and vocabulary.

Both of the register's servers (the OIOREST resources and the ``/_sandbox`` test hooks) work
on one :class:`RegisterState`; this module also holds what both need to read requests and
answer errors: the end-user key, the SysID and CPR/CVR formats, the ``dkal:Fejl`` answer, the
register's clock (real, injected, or fixed by a hook) and the subscription rule EP_NS1 and
EP_NS4 share. Resources, codes and formats: ``docs/nemsms-register.md``.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from serviceplatform.commands.workdir_clock import read_fixed_clock, write_fixed_clock
from serviceplatform.sandbox.register_lists import ListView, StoredList, SubscriptionList

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
    "Sending",
    "Subject",
    "fejl_xml",
    "iso_utc",
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
    """What one list reference serves: a list date's entries, fixed when it was taken."""

    sysid: str
    entries: ListView
    list_date: date


@dataclass(frozen=True)
class Sending:
    """One SMS the register accepted (EP_NS4), keyed by (``sysid``, ``id``)."""

    sysid: str
    id: str
    recipient: Subject
    title: str | None
    text: str
    sent_at: datetime
    #: The 201 answer document, answered again (with 200) to an idempotent repeat.
    answer: bytes

    def as_json(self) -> dict[str, Any]:
        return {
            "sysid": self.sysid,
            "id": self.id,
            "recipient": {"kind": self.recipient[0], "number": self.recipient[1]},
            "title": self.title,
            "text": self.text,
            "sent_at": iso_utc(self.sent_at, seconds=True),
        }


def iso_utc(moment: datetime, *, seconds: bool = False) -> str:
    """``moment`` in UTC as ISO 8601 with ``Z``; ``seconds`` drops the fraction."""
    utc = moment.astimezone(UTC)
    text = utc.isoformat(timespec="seconds") if seconds else utc.isoformat()
    return text.removesuffix("+00:00") + "Z"


DANISH_TIME = ZoneInfo("Europe/Copenhagen")


def _real_clock() -> datetime:
    return datetime.now(UTC)


class RegisterState:
    """Everything both servers share; every access holds ``lock``."""

    def __init__(
        self,
        known_sysids: set[str] | None,
        max_recorded: int,
        part_size: int,
        clock: Callable[[], datetime] | None = None,
        clock_dir: Path | None = None,
    ) -> None:
        self.lock = threading.Lock()
        self.known_sysids = frozenset(known_sysids) if known_sysids is not None else None
        self.part_size = part_size
        self.max_recorded = max_recorded
        self.requests: deque[dict[str, Any]] = deque(maxlen=max_recorded)
        self.requests_received = 0
        self.users: dict[Subject, EndUser] = {}
        #: The subscription list of each SysID, as the ``subscriptions`` hook last set it.
        self.lists: dict[str, SubscriptionList] = {}
        self.snapshots: dict[str, ListSnapshot] = {}
        #: The reference already taken of (SysID, list date, list): one snapshot per list
        #: date, however often a slow or retried client asks.
        self.list_references: dict[tuple[str, date, int], str] = {}
        #: Serialises taking snapshots, so retries wait for one instead of each taking its own.
        self.snapshot_lock = threading.Lock()
        #: Delay injected by the ``faults`` hook (``"status": "delay"``), in seconds.
        self.fault_delay = 0.0
        self.fault: int | str | None = None
        self.fault_remaining = 0
        #: The clock the register runs on unless the ``clock`` hook fixed an instant.
        self.clock: Callable[[], datetime] = clock or _real_clock
        self.fixed_now: datetime | None = None
        #: A sandbox's work directory: a fixed instant is shared with the commands run with
        #: ``--workdir`` through its ``clock.json`` (and survives a restart).
        self.clock_dir = clock_dir
        if clock_dir is not None:
            self.fixed_now = read_fixed_clock(clock_dir)
        #: Accepted sendings by (sysid, MeddelelseIdentifikator), oldest first.
        self.sendings: OrderedDict[tuple[str, str], Sending] = OrderedDict()

    def record(self, entry: dict[str, Any]) -> int | str | float | None:
        """Remember one register request; return the fault it must answer with, if any.

        A delay fault is returned as its seconds (a float): answer normally after them.
        """
        with self.lock:
            self.requests.append(entry)
            self.requests_received += 1
            if self.fault_remaining > 0:
                self.fault_remaining -= 1
                return self.fault_delay if self.fault == "delay" else self.fault
            return None

    def now(self) -> datetime:
        """The register's time (aware): the fixed instant if the hook set one, else the clock.

        Does not take ``lock``; reading one attribute is atomic.
        """
        fixed = self.fixed_now
        moment = fixed if fixed is not None else self.clock()
        if moment.tzinfo is None:
            raise ValueError("the register's clock must answer aware datetimes")
        return moment

    def fix_clock(self, moment: datetime | None) -> None:
        """Fix the register's clock at ``moment`` (None: the running clock); hold ``lock``."""
        if self.clock_dir is not None:
            write_fixed_clock(self.clock_dir, moment)
        self.fixed_now = moment

    def list_date(self) -> date:
        """The date of the list the register serves now: the register's Danish date."""
        return self.now().astimezone(DANISH_TIME).date()

    def set_subscriptions(self, sysid: str, cprs: list[str], cvrs: list[str]) -> None:
        """Replace the subscription list of ``sysid`` (CVR without colon); hold ``lock``."""
        self.set_list(sysid, StoredList(cprs, cvrs))

    def set_list(self, sysid: str, listed: SubscriptionList) -> None:
        """Replace the subscription list of ``sysid``; hold ``lock``."""
        self.lists[sysid] = listed

    def subscription(self, sysid: str, subject: Subject) -> bool | None:
        """Whether ``subject`` is subscribed for ``sysid``; None if the register does not know it.

        Subscribed: in the list the ``subscriptions`` hook set for ``sysid``, or the end user's
        last ``Myndighedstilmelding`` was true (EP_NS3 subscribes for every authority). Hold
        ``lock``.
        """
        found = self.lists.get(sysid)
        listed = found is not None and found.contains(subject, self.list_date())
        user = self.users.get(subject)
        if user is None and not listed:
            return None
        return listed or (user is not None and user.tilmeldt is True)

    def remember(self, sending: Sending) -> None:
        """Keep an accepted sending; beyond ``max_recorded`` the oldest is forgotten. Hold
        ``lock``."""
        self.sendings[(sending.sysid, sending.id)] = sending
        while len(self.sendings) > self.max_recorded:
            self.sendings.popitem(last=False)


def parse_end_user(raw: str) -> Subject:
    """The end user named by a (percent-encoded) path segment; ``RegisterFault`` 1001 if none."""
    value = unquote(raw)
    if CPR.fullmatch(value):
        return ("cpr", value)
    match = CVR.fullmatch(value)
    if match:
        return ("cvr", match.group(1))
    raise RegisterFault(400, 1001, "the end user must be a CPR (10 digits) or CVR (8 digits)")
