"""The errors of SF2250 NemSMS, SF1600 Print and its SF1601 route: SP-501..SP-599.

NemSMS's business rules (message length, sending hours, channel and priority), the sending
ledger's two refusals, and the nightly subscription list's. Each is a ``BusinessRuleError`` of
the core's tree, so a caller gets the platform fault as for any other; the core finds these
classes through the registry (``serviceplatform.errors.all_error_classes``).
"""

from __future__ import annotations

from serviceplatform.errors import BusinessRuleError


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


class MemoNotificationTooLong(BusinessRuleError):
    """The SF1601 route only: MeMo's ``notification`` (the SMS text) holds at most 150
    characters; the register route takes NemSMS's 160."""

    code = "SP-510"
    text = "On the SF1601 route a NemSMS text is at most 150 characters (MeMo notification)"


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


class NoNightlyAgreement(BusinessRuleError):
    # Its own code: SP-522's text (the list date) misled an operator who named an authority
    # without an agreement.
    code = "SP-523"
    text = (
        "The authority has no approved SF2250 agreement active today with a Register SysID "
        "and an outward certificate"
    )
