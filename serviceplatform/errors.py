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
SP-6xx  administration
SP-7xx  OOTS evidence requests (700-739) and the OOTS common services (740-)
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


class ConsumerSystemDeactivated(SecurityError):
    code = "SP-218"
    text = "The calling consumer system is deactivated"


class ConsumerSystemCertificateNotAccepted(SecurityError):
    """The certificate is registered, but outside the window calls with it are accepted."""

    code = "SP-219"
    text = "The calling system's certificate is retired or not yet accepted"


class AuthorityContextMismatch(SecurityError):
    """``AuthorityContext/MunicipalityCVR`` names another authority than the token."""

    code = "SP-217"
    text = "The AuthorityContext MunicipalityCVR differs from the authority in the token"


class TokenNotBound(SecurityError):
    """The message signature does not cover the assertion (STR-Transform or direct reference),
    or the assertion is not the one signed: another token of the same holder, for another
    authority, could have been swapped in on the way (``security.require_token_binding``)."""

    code = "SP-225"
    text = "The message signature does not cover the SAML assertion"


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


class ConsumerSystemNotFound(AdminError):
    code = "SP-606"
    text = "No such consumer system"
    http_status = 404


class CertificateAlreadyRegistered(AdminError):
    code = "SP-607"
    text = "The certificate is already registered for a consumer system"
    http_status = 409


class CertificateInvalid(AdminError):
    code = "SP-608"
    text = "The certificate cannot be registered"
    http_status = 400


# --- SP-70x..73x: OOTS evidence requests (integrations/oots) -------------------------------


class OotsError(ServicePlatformError):
    """An OOTS evidence request failed; the subclasses say how."""

    code = "SP-700"
    text = "The OOTS evidence request failed"


class OotsEdmError(OotsError):
    """The Evidence Provider answered an error: this class when its code is missing or unknown,
    else the subclass of its ``EDM:ERR:000x`` code."""

    code = "SP-709"
    text = "The evidence provider answered an error without a known EDM error code"
    #: The EDM error code the subclass stands for.
    edm_code: ClassVar[str | None] = None


class OotsAuthenticationFailed(OotsEdmError):
    code = "SP-701"
    text = "EDM:ERR:0001: the evidence provider could not authenticate the user or requester"
    client_fault = True
    edm_code = "EDM:ERR:0001"


class OotsAuthorizationMissing(OotsEdmError):
    """``EDM:ERR:0002`` without a preview location: the user declined, or no preview possible."""

    code = "SP-702"
    text = "EDM:ERR:0002: the evidence provider has no authorisation to share (preview declined?)"
    client_fault = True
    edm_code = "EDM:ERR:0002"


class OotsRequestRefused(OotsEdmError):
    code = "SP-703"
    text = "EDM:ERR:0003: the evidence provider refused the request as invalid"
    edm_code = "EDM:ERR:0003"


class OotsEvidenceNotFound(OotsEdmError):
    code = "SP-704"
    text = "EDM:ERR:0004: the evidence provider has no evidence for this subject and type"
    client_fault = True
    edm_code = "EDM:ERR:0004"


class OotsProviderTimeout(OotsEdmError):
    code = "SP-705"
    text = "EDM:ERR:0005: the exchange took too long at the evidence provider"
    retryable = True
    edm_code = "EDM:ERR:0005"


class OotsReferenceUnresolved(OotsEdmError):
    code = "SP-706"
    text = "EDM:ERR:0006: the evidence provider cannot resolve a reference (preview session?)"
    client_fault = True
    edm_code = "EDM:ERR:0006"


class OotsCapabilityUnsupported(OotsEdmError):
    code = "SP-707"
    text = "EDM:ERR:0007: the evidence provider does not support what was asked"
    client_fault = True
    edm_code = "EDM:ERR:0007"


class OotsProviderFailed(OotsEdmError):
    code = "SP-708"
    text = "EDM:ERR:0008: the evidence provider failed while processing the request"
    retryable = True
    edm_code = "EDM:ERR:0008"


class OotsRequesterNotConfigured(OotsError):
    """The agreement routes the call but names no OOTS identifier (role ``oots_requester``)."""

    code = "SP-710"
    text = "No OOTS requester identifier is configured for this authority"
    client_fault = True


class OotsRequestUnknown(OotsError):
    code = "SP-711"
    text = "No OOTS evidence request has this id"
    client_fault = True


class OotsRequestOfOtherAuthority(OotsError):
    code = "SP-712"
    text = "The OOTS evidence request belongs to another authority"
    client_fault = True


class OotsNoPreviewPending(OotsError):
    code = "SP-713"
    text = "The OOTS evidence request is not waiting for a preview"
    client_fault = True


class OotsInvalidInput(OotsError):
    code = "SP-714"
    text = "The OOTS request holds an invalid value"
    client_fault = True


class OotsUnknownMediaType(OotsInvalidInput):
    code = "SP-715"
    text = "The media type is not one of the OOTS media types"


class OotsInvalidCountry(OotsInvalidInput):
    code = "SP-716"
    text = "The country code is not an ISO 3166-1 alpha-2 code of an OOTS country"


class OotsProviderUnknown(OotsError):
    code = "SP-717"
    text = "The Data Service Directory names no such evidence provider for this evidence type"
    client_fault = True


class OotsAttributeRequired(OotsError):
    code = "SP-718"
    text = "The Data Service Directory needs an additional attribute to name the provider"
    client_fault = True


class OotsVersionUnsupported(OotsError):
    code = "SP-719"
    text = "The evidence provider speaks no EDM version the platform speaks"


class OotsAnswerUnreadable(OotsError):
    code = "SP-720"
    text = "The evidence provider's answer cannot be read as an EDM message"


class OotsAnswerOverdue(OotsError):
    code = "SP-721"
    text = "No answer from the evidence provider arrived in time"
    retryable = True


class OotsEvidenceExpired(OotsError):
    code = "SP-722"
    text = "The evidence was received but is no longer kept (retention period passed)"
    client_fault = True


class OotsNotDelivered(OotsError):
    code = "SP-723"
    text = "The request could not be handed to the OOTS gateway in time (it stayed queued)"
    retryable = True


# --- SP-74x..75x: OOTS common services (integrations/oots/common_services) -----------------


class CommonServicesError(UpstreamError):
    """The Evidence Broker or Data Service Directory failed; the subclasses say how."""

    code = "SP-740"
    text = "The OOTS common services (Evidence Broker, Data Service Directory) failed"


class CommonServicesUnavailable(CommonServicesError):
    """Unreachable, timed out or 5xx, after the retries the timeout budget allowed."""

    code = "SP-741"
    text = "The OOTS common services cannot be reached or did not answer in time"
    retryable = True


class CommonServicesBadAnswer(CommonServicesError):
    """Not a RegRep query response: not XML, another root, unknown status, missing parts."""

    code = "SP-742"
    text = "The OOTS common services answered something the platform cannot read"


class CommonServicesRefused(CommonServicesError):
    """An ``rs:Exception`` the platform has no other meaning for (``EB:ERR:0002``,
    ``DSD:ERR:0003``, ...); ``remote_code`` carries it."""

    code = "SP-743"
    text = "The OOTS common services refused the query"
    client_fault = True

    def __init__(
        self,
        detail: str | None = None,
        *,
        remote_code: str | None = None,
        remote_message: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(detail, status)
        #: The ``EB:ERR:000x`` / ``DSD:ERR:000x`` code answered (None when it was omitted).
        self.remote_code = remote_code
        self.remote_message = remote_message


class CommonServicesAttributeValueUnknown(CommonServicesRefused):
    """``DSD:ERR:0006``: the additional attribute's value (e.g. a region) is not known."""

    code = "SP-744"
    text = "DSD:ERR:0006: the Data Service Directory does not accept the attribute value given"


class CommonServicesQueryInvalid(RequestError):
    """Refused before any call: a country that is no alpha-2 code, an empty identifier, ..."""

    code = "SP-745"
    text = "The query for the OOTS common services holds an invalid value"


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


def rebuild_error(code: str | None, error_text: str | None) -> ServicePlatformError:
    """The error that ``code`` and ``error_text`` describe, for one stored or sent as text.

    The inverse of :attr:`ServicePlatformError.error_text`: the class is the one with ``code``
    (the root class for an unknown code) and the detail is what follows its class text.
    """
    error_class = next(
        (cls for cls in all_error_classes() if cls.code == code), ServicePlatformError
    )
    if not error_text or error_text == error_class.text:
        return error_class(None)
    prefix = error_class.text + ": "
    return error_class(error_text.removeprefix(prefix))
