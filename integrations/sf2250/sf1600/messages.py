"""The SF1600 Print requests SF2250 uses (EP_SP1, EP_SP4) as plain values, free of SOAP.

``service.py`` builds these from a request that passed the contract; the handler checks
them against the NemSMS rules (``sms_rules.py``) and maps them to the register
(``mapping.py``). ``Subject`` checks the CPR date and the CVR check digit, which the
schema cannot.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from integrations.sf2250.messages import Subject


@dataclass(frozen=True)
class SpoergTilmelding:
    """EP_SP1: is the end user subscribed to NemSMS?"""

    subject: Subject
    #: ``AuthorityContext/MunicipalityCVR`` when the caller sent one.
    municipality_cvr: str | None = None
    #: ``MeddelelseIndholdstypeIdentifikator`` when given (kept for the audit trail).
    indholdstype: int | None = None


@dataclass(frozen=True)
class AfsendBrev:
    """EP_SP4: send one "letter" that NemSMS delivers as an SMS."""

    kanalvalg: str
    prioritet: str
    #: ``ForsendelseI/AfsendelseIdentifikator``: the caller's id of this sending.
    afsendelse_id: str
    #: The recipient (``ForsendelseModtager/AfsendelseModtager``); None when not given.
    recipient: Subject | None
    filformat: str
    #: ``MeddelelseIndholdData`` decoded from base64: the message text's bytes.
    content: bytes = b""
    #: ``DokumentParametre/TitelTekst`` when given.
    titel: str | None = None
    #: ``DigitalPostParametre/MeddelelseIndholdstypeIdentifikator`` when given.
    indholdstype: int | None = None
    municipality_cvr: str | None = None

    def fingerprint(self) -> str:
        """A hash of what would be sent: a reused id with other content is told apart."""
        digest = hashlib.sha256()
        for part in (
            self.kanalvalg,
            self.prioritet,
            self.recipient.kind if self.recipient else "",
            self.recipient.number if self.recipient else "",
            self.filformat,
            self.titel or "",
            str(self.indholdstype or ""),
        ):
            digest.update(part.encode("utf-8") + b"\0")
        digest.update(self.content)
        return digest.hexdigest()

    def __repr__(self) -> str:
        # Never the message text or a full CPR number in logs and tracebacks.
        return (
            f"AfsendBrev(kanalvalg={self.kanalvalg!r}, prioritet={self.prioritet!r}, "
            f"afsendelse_id={self.afsendelse_id!r}, recipient={self.recipient!r}, "
            f"filformat={self.filformat!r}, content=<{len(self.content)} bytes>)"
        )
