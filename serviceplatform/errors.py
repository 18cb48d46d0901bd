"""The platform's one error tree.

Every failure the platform reports to a caller is an instance of ``ServicePlatformError``.
Each concrete class carries the two fields of the platform fault
(``ServiceplatformFault/ErrorList/Error{ErrorCode, ErrorText}``), whether the fault is the
caller's (SOAP ``Sender``) or ours (``Receiver``), and whether repeating the operation may help.

Library errors (lxml, xmlsec, requests, SQLAlchemy, ...) are translated into this tree at the
boundary where they are raised, with ``raise ... from exc``; nothing above that boundary
catches a third-party exception.

Codes are stable strings, grouped by the hundreds. The core's own classes are here:

======  =====================================================================
SP-1xx  the request itself: envelope, XML, size, contract
SP-2xx  inbound security: Liberty/WS-Addressing headers, token, signature
SP-3xx  agreements and routing
SP-4xx  the upstream peer (register, gateway) and outward certificates
SP-500  a business rule of an integration (the base of its rule errors)
SP-6xx  administration
SP-9xx  the platform itself
======  =====================================================================

The other codes belong to the integrations: each defines its classes in its own module and
declares them with the code range it takes (``Integration.errors``; SF2250 and SF1600:
SP-501..SP-599, OOTS: SP-700..SP-799). :func:`all_error_classes` imports them through the
registry and :func:`check_codes` keeps every code unique and inside its owner's range.

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
    #: A SOAP fault code of the envelope's own namespace that the SOAP standard prescribes in
    #: place of Sender/Receiver (SOAP 1.1 Client/Server): ``MustUnderstand``.
    soap_code: ClassVar[str | None] = None

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


class HeaderNotUnderstood(RequestError):
    """SOAP 1.2 part 1 section 5.4.8 / SOAP 1.1 section 4.2.3: a header block addressed to
    the platform with ``mustUnderstand`` that the platform does not process."""

    code = "SP-110"
    text = "A header block marked mustUnderstand is not understood"
    soap_code = "MustUnderstand"


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


class HolderCertificateNotValid(SecurityError):
    """The holder-of-key certificate in the token is expired or not yet valid: the STS
    vouched for a key whose certificate no longer (or not yet) stands for its holder."""

    code = "SP-226"
    text = "The holder-of-key certificate is outside its validity period"


class SubjectConfirmationExpired(SecurityError):
    """SAML core 2.4.1.2: the holder-of-key ``SubjectConfirmationData NotOnOrAfter`` has
    passed, so the token may no longer be used to confirm its subject (even while its
    ``Conditions`` still hold)."""

    code = "SP-227"
    text = "The SAML subject confirmation has expired"


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

    def __init__(
        self, detail: str | None = None, status: int | None = None, peer_code: str | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        #: The peer's own error code, where its answer names one (a register's ``FejlKode``):
        #: lets an integration tell one refusal of a status class from another.
        self.peer_code = peer_code


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
    text = "The outward certificate is missing or unreadable"


class CertificateExpired(ServicePlatformError):
    code = "SP-421"
    text = "The outward certificate has expired or is not yet valid"


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


class TokenServiceUnavailable(ServicePlatformError):
    """The STS could not be reached, timed out or answered 5xx (issue 15: STS down)."""

    code = "SP-440"
    text = "The security token service (STS) is unavailable"
    retryable = True


class TokenRequestRefused(ServicePlatformError):
    """The STS answered 4xx to the issue request: it refuses the authority's CVR, the
    certificate or the entity ID (no agreement in KOMBIT's administration module)."""

    code = "SP-441"
    text = "The security token service (STS) refused to issue a token"


class TokenExchangeUnavailable(ServicePlatformError):
    """The access-token service could not be reached, timed out or answered 5xx."""

    code = "SP-442"
    text = "The access-token service is unavailable"
    retryable = True


class TokenExchangeRefused(ServicePlatformError):
    """The access-token service answered 4xx to the exchange of the STS token."""

    code = "SP-443"
    text = "The access-token service refused to exchange the STS token"


class AccessTokenExpired(ServicePlatformError):
    """The access token arrived already expired (or inside the refresh margin): a clock or
    lifetime problem at the token services that another attempt would not mend."""

    code = "SP-444"
    text = "The access token issued for the outward call has expired"
    retryable = True


class TokenAnswerUnreadable(ServicePlatformError):
    """The STS or the access-token service answered 2xx with a body the platform cannot read."""

    code = "SP-445"
    text = "The token service answered with something the platform cannot read"


# --- SP-500: business rules of an integration (its subclasses live in the integration) -----


class BusinessRuleError(ServicePlatformError):
    code = "SP-500"
    text = "The request breaks a business rule of the service"
    client_fault = True


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


class CertificateAliasUnknown(AdminError):
    code = "SP-609"
    text = "The certificate alias names no certificate in the certificate store"
    http_status = 400


class CertificateAliasExpired(AdminError):
    code = "SP-610"
    text = "The certificate the alias names has expired"
    http_status = 400


class MessageNotFound(AdminError):
    code = "SP-611"
    text = "No such message in the message log"
    http_status = 404


class ResendRefused(AdminError):
    code = "SP-612"
    text = "The message cannot be resent"
    http_status = 409


class AdminRequestCrossSite(AdminError):
    """CSRF defence: a changing call from another site's page (foreign ``Origin`` or
    ``Sec-Fetch-Site: cross-site``) is refused before anything is read or changed."""

    code = "SP-620"
    text = "A changing administration request from another site is refused"
    http_status = 403


class AdminMediaTypeUnsupported(AdminError):
    """A changing call must be ``application/json``: an HTML form cannot send that type
    across sites without a CORS preflight the platform never grants."""

    code = "SP-621"
    text = "A changing administration request must be sent as application/json"
    http_status = 415


# --- SP-9xx: the platform -------------------------------------------------------------------


class ConfigurationError(ServicePlatformError):
    code = "SP-901"
    text = "The platform is misconfigured"


class StorageError(ServicePlatformError):
    code = "SP-902"
    text = "The platform's database failed"
    retryable = True


class SchemaNotCurrent(StorageError):
    """The database's schema is not at this version's revision and this command does not
    migrate it: a reading command never does (on PostgreSQL), and a role that may not change
    the schema cannot. ``serviceplatform db upgrade``, run by the schema's owner, does."""

    code = "SP-903"
    text = "The database schema is not at this version's revision"
    retryable = False


def all_error_classes() -> list[type[ServicePlatformError]]:
    """Every class of the tree, the integrations' included, root first.

    The integrations' error modules are imported through the registry first, so their
    classes are found without the core naming them. Only the classes of this module and of
    the registered integrations' error modules count: a class of an integration that is no
    longer registered (one a test registered for a while) is not part of the tree.
    """
    from serviceplatform.registry import error_codes, import_error_modules

    import_error_modules()
    modules = [__name__, *(codes.module for codes in error_codes().values())]
    seen: list[type[ServicePlatformError]] = []
    stack: list[type[ServicePlatformError]] = [ServicePlatformError]
    while stack:
        cls = stack.pop(0)
        if any(_within(cls.__module__, module) for module in modules):
            seen.append(cls)
        stack.extend(cls.__subclasses__())
    return seen


def code_number(code: str) -> int:
    """``SP-745`` -> 745; ValueError for a code of another shape."""
    prefix, _, number = code.partition("-")
    if prefix != "SP" or len(number) != 3 or not number.isdigit():
        raise ValueError(f"{code!r} is not an SP-nnn code")
    return int(number)


def check_codes() -> list[str]:
    """Every breach of the code rules, one line each; empty when the tree is sound.

    Codes are unique across the core and the integrations; an integration's classes use
    only codes of its declared range, and ranges hold no code of the core nor of another.
    """
    from serviceplatform.registry import error_codes

    declared = error_codes()
    problems: list[str] = []
    owners: dict[str, str] = {}
    for cls in all_error_classes():
        owner = next(
            (name for name, codes in declared.items() if _within(cls.__module__, codes.module)),
            None,
        )
        where = f"{cls.__module__}.{cls.__qualname__}"
        if cls.code in owners:
            problems.append(f"{where}: {cls.code} is also {owners[cls.code]}'s")
        owners[cls.code] = where
        try:
            number = code_number(cls.code)
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
            continue
        for name, codes in declared.items():
            inside = number in codes.numbers
            if owner == name and not inside:
                problems.append(f"{where}: {cls.code} is outside integration {name!r}'s range")
            elif owner != name and inside:
                problems.append(f"{where}: {cls.code} is in integration {name!r}'s range")
    return problems


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


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
