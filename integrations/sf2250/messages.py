"""The SF2250 VedligeholdTilmelding requests as plain values, free of SOAP and spyne.

The SOAP service (``service.py``) builds these from a request that passed the contract; the
platform handler maps them to the NemSMS register (``mapping.py``). Construction checks what
the XML schema cannot: the CPR number's date and the CVR number's check digit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from serviceplatform.errors import InvalidCpr, InvalidCvr, SubjectChoiceInvalid
from serviceplatform.logmask import mask_cpr
from serviceplatform.routing.identifiers import is_valid_cpr, is_valid_cvr

SubjectKind = Literal["cpr", "cvr"]


@dataclass(frozen=True)
class Subject:
    """The end user a call is about: a person (CPR number) or a company (CVR number)."""

    kind: SubjectKind
    number: str

    def __post_init__(self) -> None:
        if self.kind == "cpr":
            if not is_valid_cpr(self.number):
                # The number itself stays out of the text: fault texts are logged.
                raise InvalidCpr("not ten digits forming a valid date of birth")
        elif self.kind == "cvr":
            if not is_valid_cvr(self.number):
                raise InvalidCvr(f"{self.number!r} fails the modulus-11 check")
        else:
            raise SubjectChoiceInvalid(f"unknown subject kind {self.kind!r}")

    @classmethod
    def from_choice(cls, cpr: str | None, cvr: str | None) -> Subject:
        """The subject of a ``CPRCVR`` choice: exactly one of the two must be given."""
        cpr = cpr.strip() if cpr else None
        cvr = cvr.strip() if cvr else None
        if cpr and cvr:
            raise SubjectChoiceInvalid("both CPR-nr and CVR-nr were given")
        if cpr:
            return cls("cpr", cpr)
        if cvr:
            return cls("cvr", cvr)
        raise SubjectChoiceInvalid("neither CPR-nr nor CVR-nr was given")

    @property
    def masked(self) -> str:
        """The number fit for logs: a CPR number as ``010190****``, a CVR number in full."""
        return mask_cpr(self.number) if self.kind == "cpr" else self.number

    def __repr__(self) -> str:
        # Dataclass reprs end up in logs and tracebacks; never with a full CPR number.
        return f"Subject(kind={self.kind!r}, number={self.masked!r})"


@dataclass(frozen=True)
class SlutbrugerStamdata:
    """End-user master data (``dkal:SlutbrugerStamdata``), see ``wsdl/sf2250/README.md``."""

    mobiltelefon_nummer: str
    navn: str | None = None
    email_adresse: str | None = None


@dataclass(frozen=True)
class OpdaterBorgerNemSMS:
    """EP_SP2: create or update the end user in NemSMS."""

    subject: Subject
    stamdata: SlutbrugerStamdata


@dataclass(frozen=True)
class TilmeldNemSMS:
    """EP_SP3: subscribe (``tilmeld=True``) or unsubscribe the end user for all authorities."""

    subject: Subject
    tilmeld: bool
