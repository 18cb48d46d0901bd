"""Names and value formats of the KOMBIT security wire format, shared by validator and signer.

Namespaces, Clark-notation element and attribute names (``{ns}local``, the form lxml uses),
the algorithm URIs the platform accepts, and ``xs:dateTime`` parsing and formatting.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

SOAP11_NS: Final = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_NS: Final = "http://www.w3.org/2003/05/soap-envelope"
SOAP_NS_BY_VERSION: Final[dict[int, str]] = {11: SOAP11_NS, 12: SOAP12_NS}

SBF_NS: Final = "urn:liberty:sb:2006-08"
SBF_PROFILE_NS: Final = "urn:liberty:sb:profile"
SBF_VERSION: Final = "2.0"
SBF_PROFILE_BASIC: Final = "urn:liberty:sb:profile:basic"

WSA_NS: Final = "http://www.w3.org/2005/08/addressing"
WSA_ANONYMOUS: Final = "http://www.w3.org/2005/08/addressing/anonymous"
WSSE_NS: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSSE11_NS: Final = "http://docs.oasis-open.org/wss/oasis-wss-wssecurity-secext-1.1.xsd"
WSU_NS: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
REQUEST_HEADER_NS: Final = "http://kombit.dk/xml/schemas/RequestHeader/1/"

SAML_NS: Final = "urn:oasis:names:tc:SAML:2.0:assertion"
DS_NS: Final = "http://www.w3.org/2000/09/xmldsig#"
XSI_NS: Final = "http://www.w3.org/2001/XMLSchema-instance"
EXC_C14N_NS: Final = "http://www.w3.org/2001/10/xml-exc-c14n#"

SAML_TOKEN_TYPE: Final = "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0"
SAMLID_VALUE_TYPE: Final = "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLID"
HOLDER_OF_KEY: Final = "urn:oasis:names:tc:SAML:2.0:cm:holder-of-key"
CVR_ATTRIBUTE: Final = "dk:gov:saml:attribute:CvrNumberIdentifier"

# The one algorithm suite accepted: SPEC section 4 (RSA-SHA256, exclusive c14n, SHA-256).
ALG_EXC_C14N: Final = "http://www.w3.org/2001/10/xml-exc-c14n#"
ALG_ENVELOPED: Final = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
ALG_RSA_SHA256: Final = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
ALG_SHA256: Final = "http://www.w3.org/2001/04/xmlenc#sha256"
#: WSS 1.0 section 8.3: digests the token a ``SecurityTokenReference`` names, not the reference.
ALG_STR_TRANSFORM: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#STR-Transform"


def qn(ns: str, local: str) -> str:
    """The Clark name ``{ns}local``."""
    return f"{{{ns}}}{local}"


SBF_FRAMEWORK: Final = qn(SBF_NS, "Framework")
SBF_PROFILE_ATTR: Final = qn(SBF_PROFILE_NS, "profile")
WSA_ACTION: Final = qn(WSA_NS, "Action")
WSA_MESSAGE_ID: Final = qn(WSA_NS, "MessageID")
WSA_TO: Final = qn(WSA_NS, "To")
WSA_REPLY_TO: Final = qn(WSA_NS, "ReplyTo")
WSA_ADDRESS: Final = qn(WSA_NS, "Address")
WSSE_SECURITY: Final = qn(WSSE_NS, "Security")
WSSE_STR: Final = qn(WSSE_NS, "SecurityTokenReference")
WSSE_KEY_IDENTIFIER: Final = qn(WSSE_NS, "KeyIdentifier")
WSSE_REFERENCE: Final = qn(WSSE_NS, "Reference")
WSSE_TRANSFORMATION_PARAMETERS: Final = qn(WSSE_NS, "TransformationParameters")
WSSE11_TOKEN_TYPE: Final = qn(WSSE11_NS, "TokenType")
WSU_ID: Final = qn(WSU_NS, "Id")
WSU_TIMESTAMP: Final = qn(WSU_NS, "Timestamp")
WSU_CREATED: Final = qn(WSU_NS, "Created")
WSU_EXPIRES: Final = qn(WSU_NS, "Expires")
RH_REQUEST_HEADER: Final = qn(REQUEST_HEADER_NS, "RequestHeader")
RH_TRANSACTION_UUID: Final = qn(REQUEST_HEADER_NS, "TransactionUUID")
SAML_ASSERTION: Final = qn(SAML_NS, "Assertion")
DS_SIGNATURE: Final = qn(DS_NS, "Signature")
DS_SIGNED_INFO: Final = qn(DS_NS, "SignedInfo")
DS_KEY_INFO: Final = qn(DS_NS, "KeyInfo")
DS_X509_DATA: Final = qn(DS_NS, "X509Data")
DS_X509_CERTIFICATE: Final = qn(DS_NS, "X509Certificate")

#: The header blocks the platform processes: what ``read_message`` reads from a request's
#: Header, and so what a ``mustUnderstand`` mark may ask of it (``soap/must_understand.py``).
PROCESSED_HEADERS: Final = frozenset(
    {
        SBF_FRAMEWORK,
        WSA_ACTION,
        WSA_MESSAGE_ID,
        WSA_TO,
        WSA_REPLY_TO,
        WSSE_SECURITY,
        RH_REQUEST_HEADER,
    }
)


def parse_instant(text: str | None) -> datetime | None:
    """An ``xs:dateTime`` with a time zone as an aware UTC datetime; None if absent or invalid.

    A value without a time zone is refused: its instant is ambiguous, and security decisions
    must not depend on the server's local time.
    """
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if value.tzinfo is None:
        return None
    return value.astimezone(UTC)


def format_instant(value: datetime) -> str:
    """``value`` as ``xs:dateTime`` in UTC with a ``Z`` suffix, to the second."""
    if value.tzinfo is None:
        raise ValueError("a naive datetime has no defined instant")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
