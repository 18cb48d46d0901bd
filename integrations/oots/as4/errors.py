"""The platform errors of the native AS4 access point (SP-780..SP-799), each with its ebMS code.

Each class subclasses a core base of ``serviceplatform.errors`` (so the exchange and the CLI
treat it like any other request, security or upstream failure) and carries ``ebms_code``: the
``EBMS:00xx`` error of ebMS 3 §6.7 / AS4 §1.4.2.5 the receiver answers in an ``eb:Error``
signal, or the sender reports (``EBMS:0301`` when no valid receipt came).

Inbound (a message *to* the platform's access point; the partner's fault):

========  =======================  ============  ==================================================
SP-780    ``As4MessageMalformed``  EBMS:0004     not a SwA ``multipart/related`` message, no SOAP
                                                 part, a ``cid:`` that names no part, ...
SP-781    ``As4HeaderInvalid``     EBMS:0009     the ebMS header breaks the OOTS PMode (service,
                                                 action, role, missing property)
SP-787    ``As4ValueNotRecognized``  EBMS:0001  a service/action no OOTS leg has (no PMode leg)
SP-782    ``As4PartyUnknown``      EBMS:0003     ``From``/``To`` is no configured partner / not us
SP-783    ``As4SignatureInvalid``  EBMS:0101     a digest or the signature value does not verify,
                                                 or the signer is not the partner's certificate
SP-784    ``As4DecryptionFailed``  EBMS:0102     encrypted for another key, or tampered ciphertext
SP-785    ``As4PolicyViolation``   EBMS:0103     unsigned, unencrypted, another algorithm, a part
                                                 or the header not covered
SP-786    ``As4DecompressionFailed``  EBMS:0303  not gzip, or more than the size cap (a bomb)
========  =======================  ============  ==================================================

Outbound (the partner's answer to the platform's push):

========  =======================  ============  ==================================================
SP-790    ``As4ReceiptMissing``    EBMS:0301     no valid receipt after the PMode's retries
SP-791    ``As4ReceiptInvalid``    EBMS:0302     a receipt that is unsigned, not the partner's, for
                                                 another MessageId, or whose NRR references differ
                                                 from what the platform signed
SP-792    ``As4ErrorSignal``       (remote)      the partner answered an ``eb:Error`` signal
                                                 (``remote_code`` keeps its ``EBMS:00xx``)
SP-793    ``As4PartnerNotConfigured``  --        no AS4 partner with this party id is configured
========  =======================  ============  ==================================================
"""

from __future__ import annotations

from typing import ClassVar

from serviceplatform.errors import (
    ConfigurationError,
    RequestError,
    SecurityError,
    ServicePlatformError,
    UpstreamError,
    UpstreamUnavailable,
)

#: ebMS 3 §6.7.1 / AS4 §1.4.2.5 short descriptions, for the ``eb:Error/@shortDescription``.
EBMS_SHORT_DESCRIPTIONS: dict[str, str] = {
    "EBMS:0001": "ValueNotRecognized",
    "EBMS:0002": "FeatureNotSupported",
    "EBMS:0003": "ValueInconsistent",
    "EBMS:0004": "Other",
    "EBMS:0009": "InvalidHeader",
    "EBMS:0101": "FailedAuthentication",
    "EBMS:0102": "FailedDecryption",
    "EBMS:0103": "PolicyNoncompliance",
    "EBMS:0202": "DeliveryFailure",
    "EBMS:0301": "MissingReceipt",
    "EBMS:0302": "InvalidReceipt",
    "EBMS:0303": "DecompressionFailure",
}


def ebms_code_of(error: ServicePlatformError) -> str:
    """The ``EBMS:00xx`` an ``eb:Error`` signal answers for ``error``: its own; else
    ``EBMS:0202`` (DeliveryFailure) for the platform's failure, ``EBMS:0004`` for the sender's."""
    code = getattr(error, "ebms_code", None)
    if isinstance(code, str):
        return code
    return "EBMS:0004" if error.client_fault else "EBMS:0202"


# --- inbound: the partner's message is refused -------------------------------------------------


class As4MessageMalformed(RequestError):
    code = "SP-780"
    text = "The AS4 message is not a well-formed SOAP-with-attachments message"
    ebms_code: ClassVar[str] = "EBMS:0004"


class As4HeaderInvalid(RequestError):
    code = "SP-781"
    text = "The AS4 message's ebMS header does not match the OOTS PMode"
    ebms_code: ClassVar[str] = "EBMS:0009"


class As4ValueNotRecognized(RequestError):
    code = "SP-787"
    text = "The AS4 message's service or action is not one this access point serves"
    ebms_code: ClassVar[str] = "EBMS:0001"


class As4PartyUnknown(SecurityError):
    code = "SP-782"
    text = "The AS4 message names a party that is not a configured partner of this access point"
    ebms_code: ClassVar[str] = "EBMS:0003"


class As4SignatureInvalid(SecurityError):
    code = "SP-783"
    text = "The AS4 message's signature does not verify against the partner's certificate"
    ebms_code: ClassVar[str] = "EBMS:0101"


class As4DecryptionFailed(SecurityError):
    code = "SP-784"
    text = "The AS4 message's payload cannot be decrypted with this access point's key"
    ebms_code: ClassVar[str] = "EBMS:0102"


class As4PolicyViolation(SecurityError):
    code = "SP-785"
    text = "The AS4 message does not follow the eDelivery AS4 security policy"
    ebms_code: ClassVar[str] = "EBMS:0103"


class As4DecompressionFailed(RequestError):
    code = "SP-786"
    text = "An AS4 payload cannot be decompressed within the size limit"
    ebms_code: ClassVar[str] = "EBMS:0303"


# --- outbound: the partner's answer to our push --------------------------------------------------


class As4ReceiptMissing(UpstreamUnavailable):
    """A partner that gives no valid receipt is, for the exchange, a gateway that is down:
    the request stays queued and is sent again, same MessageId, later."""

    code = "SP-790"
    text = "EBMS:0301: no valid AS4 receipt arrived after the retries"
    retryable = True
    ebms_code: ClassVar[str] = "EBMS:0301"


class As4ReceiptInvalid(UpstreamError):
    code = "SP-791"
    text = "The AS4 receipt is invalid (signature, MessageId or non-repudiation references)"
    ebms_code: ClassVar[str] = "EBMS:0302"


class As4ErrorSignal(UpstreamError):
    """The partner refused the message with an ``eb:Error``; ``remote_code`` is its code."""

    code = "SP-792"
    text = "The partner access point answered an ebMS error signal"
    client_fault = True

    def __init__(
        self,
        detail: str | None = None,
        status: int | None = None,
        *,
        remote_code: str | None = None,
    ) -> None:
        super().__init__(detail, status)
        self.remote_code = remote_code


class As4PartnerNotConfigured(ConfigurationError):
    code = "SP-793"
    text = "No AS4 partner access point is configured for this party id"
