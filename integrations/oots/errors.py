"""The errors of OOTS evidence requests: codes SP-700..SP-799 (``INTEGRATION.errors``).

SP-700..SP-739: an evidence request (the provider's ``EDM:ERR:000x`` answers, and the
platform's own refusals); SP-740..: the common services (Evidence Broker, Data Service
Directory). The core finds these classes through the registry
(``serviceplatform.errors.all_error_classes``).
"""

from __future__ import annotations

from typing import ClassVar

from serviceplatform.errors import RequestError, ServicePlatformError, UpstreamError

# --- SP-70x..73x: OOTS evidence requests ---------------------------------------------------


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
