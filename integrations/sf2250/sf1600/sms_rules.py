"""The NemSMS rules an SMS must pass before the platform calls out (SF2250 section 1.2.5).

* ``Kanalvalg`` D (Digital Post/NemSMS) or S (NemSMS; same endpoint), ``Prioritet`` D;
* file format ``TXT``;
* the text is UTF-8, not empty, and at most 160 characters (code points after decoding);
* sending only from 08:00 up to, not including, 22:00 in Danish time (``Europe/Copenhagen``,
  so the window moves with daylight saving time).

Pure functions; the time comes from the caller's clock so tests can stand on either side of
each edge. Each rule raises its own platform error.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Final
from zoneinfo import ZoneInfo

from integrations.sf2250.errors import (
    SmsChannelNotServed,
    SmsContentInvalid,
    SmsFileFormat,
    SmsOutsideSendingHours,
    SmsPriorityNotServed,
    SmsRecipientMissing,
    SmsTooLong,
)
from integrations.sf2250.sf1600.messages import AfsendBrev

MAX_CHARACTERS: Final = 160
FILE_FORMAT: Final = "TXT"
CHANNELS: Final = frozenset({"D", "S"})
PRIORITIES: Final = frozenset({"D"})
DANISH_TIME: Final = ZoneInfo("Europe/Copenhagen")
WINDOW_OPENS: Final = time(8, 0)
WINDOW_CLOSES: Final = time(22, 0)


def sms_text(content: bytes) -> str:
    """The message text; ``SmsContentInvalid`` when it is not UTF-8 or empty."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        raise SmsContentInvalid("MeddelelseIndholdData is not UTF-8 text") from None
    if not text.strip():
        raise SmsContentInvalid("MeddelelseIndholdData is empty")
    return text


def within_sending_hours(now: datetime) -> bool:
    if now.tzinfo is None:
        raise ValueError("the sending-hours check needs an aware datetime")
    local = now.astimezone(DANISH_TIME).time()
    return WINDOW_OPENS <= local < WINDOW_CLOSES


def check_sms(request: AfsendBrev, now: datetime) -> str:
    """Every rule, cheapest first; returns the message text when all pass."""
    if request.kanalvalg not in CHANNELS:
        raise SmsChannelNotServed(f"Kanalvalg {request.kanalvalg!r}")
    if request.prioritet not in PRIORITIES:
        raise SmsPriorityNotServed(f"Prioritet {request.prioritet!r}")
    if request.recipient is None:
        raise SmsRecipientMissing("ForsendelseModtager/AfsendelseModtager is missing")
    if request.filformat.strip().upper() != FILE_FORMAT:
        raise SmsFileFormat(f"FilformatNavn {request.filformat!r}")
    text = sms_text(request.content)
    if len(text) > MAX_CHARACTERS:
        raise SmsTooLong(f"the text has {len(text)} characters")
    if not within_sending_hours(now):
        local = now.astimezone(DANISH_TIME)
        raise SmsOutsideSendingHours(f"it is {local:%H:%M:%S} in Denmark")
    return text
