"""The platform's one error tree.

Every failure the platform reports to a caller is an instance of ``ServicePlatformError``.
Each concrete class carries the two fields of the platform fault
(``ServiceplatformFault/ErrorList/Error{ErrorCode, ErrorText}``), whether the fault is the
caller's (SOAP ``Sender``) or ours (``Receiver``), and whether repeating the operation may help.

Library errors (lxml, xmlsec, requests, SQLAlchemy, ...) are translated into this tree at the
boundary where they are raised, with ``raise ... from exc``; nothing above that boundary
catches a third-party exception.

Codes are stable strings, grouped by the hundreds:

======  =====================================================================
SP-1xx  the request itself: envelope, XML, size, contract
SP-2xx  inbound security: Liberty/WS-Addressing headers, token, signature
SP-3xx  agreements and routing
SP-4xx  the upstream peer (register, gateway) and outward certificates
SP-5xx  business rules of an integration
SP-9xx  the platform itself
======  =====================================================================

The full catalogue, with the meaning of each code, is in ``docs/faults.md``.
"""

from __future__ import annotations

from typing import ClassVar


class ServicePlatformError(Exception):
    """Root of every error the platform turns into a platform fault."""

    code: ClassVar[str] = "SP-900"
    text: ClassVar[str] = "Internal platform error"
    #: True when the caller sent something wrong (SOAP Sender), False when we or a peer failed.
    client_fault: ClassVar[bool] = False
    #: True when repeating the same operation later may succeed.
    retryable: ClassVar[bool] = False
    #: A more specific SOAP fault code a standard prescribes: (namespace, local name).
    soap_subcode: ClassVar[tuple[str, str] | None] = None

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail
        super().__init__(self.error_text)

    @property
    def error_text(self) -> str:
        """The ``ErrorText`` sent to the caller: the class text plus the specific detail."""
        return f"{self.text}: {self.detail}" if self.detail else self.text


# --- SP-1xx: the request -------------------------------------------------------------------


class RequestError(ServicePlatformError):
    code = "SP-100"
    text = "Invalid request"
    client_fault = True


class MalformedXml(RequestError):
    code = "SP-101"
    text = "The request is not well-formed XML"


class ForbiddenXmlConstruct(RequestError):
    code = "SP-102"
    text = "The request contains a DTD, entity declaration or processing instruction"


class RequestTooLarge(RequestError):
    code = "SP-103"
    text = "The request body exceeds the configured size limit"


class NotSoapEnvelope(RequestError):
    code = "SP-104"
    text = "The request is not a SOAP envelope of the expected version"


class SchemaViolation(RequestError):
    code = "SP-105"
    text = "The request does not validate against the service contract"


class UnknownOperation(RequestError):
    code = "SP-106"
    text = "The requested operation is not offered by this service"


class SubjectChoiceInvalid(RequestError):
    code = "SP-107"
    text = "Exactly one of CPR-nr and CVR-nr must be given"


class InvalidCpr(RequestError):
    code = "SP-108"
    text = "The CPR number is not a valid 10-digit CPR number"


class InvalidCvr(RequestError):
    code = "SP-109"
    text = "The CVR number is not a valid 8-digit CVR number"


# --- SP-2xx: inbound security ---------------------------------------------------------------


class SecurityError(ServicePlatformError):
    code = "SP-200"
    text = "The request failed security validation"
    client_fault = True


class FrameworkVersionMismatch(SecurityError):
    """Liberty Basic SOAP Binding: ``sbf:Framework`` missing or not version 2.0 basic."""

    code = "SP-201"
    text = "FrameworkVersionMismatch: the Liberty Framework header is missing or wrong"
    # Liberty ID-WSF SOAP Binding: the receiver answers with this fault code.
    soap_subcode = ("urn:liberty:sb:2006-08", "FrameworkVersionMismatch")


class AddressingHeaderMissing(SecurityError):
    code = "SP-202"
    text = "A required WS-Addressing header is missing or wrong"


class SecurityHeaderMissing(SecurityError):
    code = "SP-203"
    text = "The wsse:Security header, its Timestamp, assertion or signature is missing"


class TimestampStale(SecurityError):
    code = "SP-204"
    text = "The message timestamp is expired, not yet valid or too long-lived"


class TokenMalformed(SecurityError):
    code = "SP-205"
    text = "The SAML assertion is malformed"


class TokenUntrustedIssuer(SecurityError):
    code = "SP-206"
    text = "The SAML assertion is not issued by a trusted STS"


class TokenSignatureInvalid(SecurityError):
    code = "SP-207"
    text = "The STS signature on the SAML assertion is invalid"


class TokenExpired(SecurityError):
    code = "SP-208"
    text = "The SAML assertion has expired"


class TokenNotYetValid(SecurityError):
    code = "SP-209"
    text = "The SAML assertion is not yet valid"


class TokenAudienceMismatch(SecurityError):
    code = "SP-210"
    text = "The SAML assertion is not issued for this service"


class TokenAuthorityMissing(SecurityError):
    code = "SP-211"
    text = "The SAML assertion carries no valid authority CVR number"


class MessageSignatureInvalid(SecurityError):
    code = "SP-212"
    text = "The message signature is invalid or the message was changed after signing"


class SignatureCoverageIncomplete(SecurityError):
    code = "SP-213"
    text = "The message signature does not cover the Body and all required headers"


class HolderOfKeyMismatch(SecurityError):
    code = "SP-214"
    text = "The message is not signed with the holder-of-key certificate of the assertion"


class MessageReplayed(SecurityError):
    code = "SP-215"
    text = "The MessageID has been seen before (replay)"


class ConsumerSystemUnknown(SecurityError):
    code = "SP-216"
    text = "The calling system's certificate is not registered for any consumer system"


class AuthorityContextMismatch(SecurityError):
    """``AuthorityContext/MunicipalityCVR`` names another authority than the token."""

    code = "SP-217"
    text = "The AuthorityContext MunicipalityCVR differs from the authority in the token"


# --- SP-3xx: agreements and routing ---------------------------------------------------------


class RoutingError(ServicePlatformError):
    code = "SP-300"
    text = "The call cannot be routed"
    client_fault = True


class NoAgreement(RoutingError):
    code = "SP-301"
    text = "No approved service agreement covers this authority, system and service"


class AgreementNotActive(RoutingError):
    code = "SP-302"
    text = "The service agreement is not active (suspended, revoked or expired)"


class NoRoute(RoutingError):
    code = "SP-303"
    text = "The routing table has no SystemId for this authority and service"


class RoutingTableInvalid(ServicePlatformError):
    """A routing table file failed validation; ``detail`` names file and line."""

    code = "SP-310"
    text = "The routing table is invalid"


# --- SP-4xx: upstream -----------------------------------------------------------------------


class UpstreamError(ServicePlatformError):
    code = "SP-400"
    text = "The upstream service failed"

    def __init__(self, detail: str | None = None, status: int | None = None) -> None:
        super().__init__(detail)
        self.status = status


class UpstreamUnreachable(UpstreamError):
    code = "SP-401"
    text = "The upstream service cannot be reached"
    retryable = True


class UpstreamTimeout(UpstreamError):
    code = "SP-402"
    text = "The upstream service did not answer in time"
    retryable = True


class UpstreamTlsError(UpstreamError):
    code = "SP-403"
    text = "The TLS handshake with the upstream service failed"


class UpstreamUnavailable(UpstreamError):
    """The peer answered 5xx (after the retries the SLA allows)."""

    code = "SP-404"
    text = "The upstream service is unavailable"
    retryable = True


class UpstreamRejected(UpstreamError):
    """The peer answered 4xx: the request as forwarded was refused; never retried."""

    code = "SP-405"
    text = "The upstream service rejected the request"
    client_fault = True


class UpstreamNotFound(UpstreamError):
    code = "SP-406"
    text = "The upstream service does not know the addressed resource"
    client_fault = True


class UpstreamAuthRefused(UpstreamError):
    code = "SP-407"
    text = "The upstream service refused the platform's certificate or SystemId"


class UpstreamBadResponse(UpstreamError):
    code = "SP-408"
    text = "The upstream service answered with something the platform cannot read"


class CertificateUnavailable(ServicePlatformError):
    code = "SP-420"
    text = "The outward certificate for this agreement is missing or unreadable"


class CertificateExpired(ServicePlatformError):
    code = "SP-421"
    text = "The outward certificate for this agreement has expired or is not yet valid"


class CertificateAliasTaken(ServicePlatformError):
    """An import would overwrite a stored certificate without being told to replace it."""

    code = "SP-422"
    text = "A certificate with this alias is already in the certificate store"


class DistributorUnavailable(ServicePlatformError):
    """The message distributor (Beskedfordeler) cannot be reached or did not answer in time."""

    code = "SP-430"
    text = "The message distributor cannot be reached"
    retryable = True


class DistributorRejected(ServicePlatformError):
    """The distributor answered a ``StandardRetur`` other than 20 (OK)."""

    code = "SP-431"
    text = "The message distributor did not accept the message"
    retryable = True

    def __init__(self, detail: str | None = None, *, status: int | None = None) -> None:
        super().__init__(detail)
        #: The ``StandardRetur/StatusKode`` answered (41: token expired, ...).
        self.status = status


# --- SP-5xx: business rules of an integration ----------------------------------------------


class BusinessRuleError(ServicePlatformError):
    code = "SP-500"
    text = "The request breaks a business rule of the service"
    client_fault = True


class SmsTooLong(BusinessRuleError):
    code = "SP-501"
    text = "A NemSMS message is at most 160 characters"


class SmsFileFormat(BusinessRuleError):
    code = "SP-502"
    text = "The file format of a NemSMS message must be TXT"


class SmsOutsideSendingHours(BusinessRuleError):
    """Retryable: the same call succeeds once the sending window opens."""

    code = "SP-503"
    text = "NemSMS messages are sent only between 08:00 and 22:00 Danish time"
    retryable = True


class SmsChannelNotServed(BusinessRuleError):
    code = "SP-504"
    text = "NemSMS cannot serve this channel choice (Kanalvalg); use D or S"


class SmsPriorityNotServed(BusinessRuleError):
    code = "SP-505"
    text = "NemSMS cannot serve this priority (Prioritet); use D"


class SmsContentInvalid(BusinessRuleError):
    code = "SP-506"
    text = "The NemSMS message text is empty or not UTF-8 text"


class SmsRecipientMissing(BusinessRuleError):
    code = "SP-507"
    text = "A NemSMS message needs exactly one recipient CPR or CVR number"


class SendingInProgress(BusinessRuleError):
    """Another call with the same sending identifier is being sent right now."""

    code = "SP-508"
    text = "A sending with this AfsendelseIdentifikator is in progress; retry later"
    retryable = True


class SendingIdentifierReused(BusinessRuleError):
    code = "SP-509"
    text = "This AfsendelseIdentifikator was already used for a different sending"


class RegisterServiceWindow(BusinessRuleError):
    """NemSMS's weekly service window; the same request works after it."""

    code = "SP-520"
    text = "The NemSMS register is in its weekly service window (Sunday 00:00-04:00)"
    client_fault = False
    retryable = True


class JobAlreadyRunning(BusinessRuleError):
    code = "SP-521"
    text = "Another platform process is running this job for this date"
    client_fault = False
    retryable = True


class ListDateUnavailable(BusinessRuleError):
    code = "SP-522"
    text = "The register serves only today's list, and no list is stored for this date"


# --- SP-6xx: administration ----------------------------------------------------------------


class AdminError(ServicePlatformError):
    code = "SP-600"
    text = "The administration request failed"
    client_fault = True
    #: The HTTP status of the admin API's answer.
    http_status: ClassVar[int] = 400


class NotAuthenticated(AdminError):
    code = "SP-601"
    text = "The caller is not authenticated"
    http_status = 401


class NotAuthorized(AdminError):
    code = "SP-602"
    text = "The caller's role does not allow this"
    http_status = 403


class AgreementNotFound(AdminError):
    code = "SP-603"
    text = "No such agreement"
    http_status = 404


class InvalidTransition(AdminError):
    code = "SP-604"
    text = "The agreement cannot make this transition"
    http_status = 409


class InvalidAdminRequest(AdminError):
    code = "SP-605"
    text = "The administration request is malformed"
    http_status = 400


# --- SP-9xx: the platform -------------------------------------------------------------------


class ConfigurationError(ServicePlatformError):
    code = "SP-901"
    text = "The platform is misconfigured"


class StorageError(ServicePlatformError):
    code = "SP-902"
    text = "The platform's database failed"
    retryable = True


def all_error_classes() -> list[type[ServicePlatformError]]:
    """Every class of the tree, root first; used to check that codes are unique."""
    seen: list[type[ServicePlatformError]] = []
    stack: list[type[ServicePlatformError]] = [ServicePlatformError]
    while stack:
        cls = stack.pop(0)
        seen.append(cls)
        stack.extend(cls.__subclasses__())
    return seen
