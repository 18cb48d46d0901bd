"""Validate an inbound KOMBIT-style request: headers, STS token, message signature, replay.

``TokenValidator.validate`` runs the checks cheapest first and raises the first failure as
its own SP-2xx error:

1. structure: Liberty ``Framework``, WS-Addressing headers, ``wsse:Security`` with one
   ``Timestamp``, one assertion and one signature (``message``);
2. timestamp freshness;
3. the token's claims: issuer, validity window, the holder-of-key confirmation's
   ``NotOnOrAfter``, audience, authority CVR, the holder-of-key certificate and its own
   validity period (``token``);
4. the message signature's shape: accepted algorithms, unique ids, coverage of Body and
   every header the platform reads, a KeyInfo naming the assertion, and (policy
   ``require_token_binding``, on by default) coverage of the assertion itself, through the
   STR-Transform or a direct reference to its ID;
5. crypto: the STS signature on the assertion, then the message signature with the
   holder-of-key certificate's key (``xmldsig_verify``); a reference to the assertion whose
   digest fails means another token was put in the signed one's place (``TokenNotBound``);
6. the replay cache, last, so that a refused message never uses up its MessageID.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from lxml import etree

from serviceplatform.errors import (
    AddressingHeaderMissing,
    ConfigurationError,
    HolderCertificateNotValid,
    HolderOfKeyMismatch,
    MessageReplayed,
    MessageSignatureInvalid,
    SignatureCoverageIncomplete,
    SubjectConfirmationExpired,
    TimestampStale,
    TokenAudienceMismatch,
    TokenAuthorityMissing,
    TokenExpired,
    TokenMalformed,
    TokenNotBound,
    TokenNotYetValid,
    TokenSignatureInvalid,
    TokenUntrustedIssuer,
)
from serviceplatform.security.certs import KnownCert, cert_from_b64, known_cert
from serviceplatform.security.context import SecurityContext
from serviceplatform.security.message import MessageParts, collect_ids, read_message
from serviceplatform.security.replay import ReplayCache
from serviceplatform.security.token import AssertionFacts, read_assertion
from serviceplatform.security.wire import (
    DS_SIGNATURE,
    SAML_ASSERTION,
    SAMLID_VALUE_TYPE,
    WSSE_KEY_IDENTIFIER,
    WSSE_REFERENCE,
    WSSE_STR,
)
from serviceplatform.security.xmldsig_verify import (
    ParsedSignature,
    SignatureFormatError,
    SignedReference,
    digest_matches,
    parse_signature,
    reference_digest,
    signature_value_valid,
)

_CVR: Final = re.compile(r"[0-9]{8}")
#: Distinct verified assertions remembered per process (a few per calling system).
_VERIFIED_CACHE_SIZE: Final = 1024
#: Stands in a remembered token's facts for its elements. An element keeps its whole document
#: alive (a signed request parsed: about 130 kB), so facts holding the first message's
#: elements kept up to ``_VERIFIED_CACHE_SIZE`` requests per process; every use of remembered
#: facts gives them that message's own elements (``_read_assertion``).
_NOT_KEPT: Final = etree.Element("element-not-kept")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class SecurityPolicy:
    """What the platform trusts and how much clock difference it tolerates."""

    trusted_sts_certs: tuple[x509.Certificate, ...]
    #: Accepted ``saml:Issuer`` values; empty accepts any issuer whose signature verifies.
    trusted_issuers: frozenset[str]
    clock_skew: timedelta = timedelta(seconds=60)
    max_timestamp_lifetime: timedelta = timedelta(minutes=5)
    replay_window: timedelta = timedelta(minutes=15)
    #: The message signature must cover the assertion (STR-Transform or a direct reference):
    #: else the same holder's token for another authority can be swapped in on the way.
    require_token_binding: bool = True


@dataclass(frozen=True)
class _Signed:
    """The message signature with each reference resolved to the element it names."""

    signature: ParsedSignature
    targets: tuple[tuple[SignedReference, etree._Element], ...]


class TokenValidator:
    """Validates requests against one policy; thread-safe, one instance per process."""

    def __init__(
        self,
        policy: SecurityPolicy,
        replay: ReplayCache,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._policy = policy
        self._replay = replay
        self._clock = clock
        self._verified: dict[bytes, None] = {}
        #: The facts of assertions read before, by their exact bytes (see ``_read_assertion``).
        self._facts: dict[bytes, AssertionFacts] = {}
        #: Digests of verified assertions as message signatures cover them, by (the
        #: assertion's exact bytes, the reference's c14n prefixes); see ``_verify_message``.
        self._assertion_digests: dict[tuple[bytes, tuple[str, ...] | None], bytes] = {}
        try:
            self._trusted = tuple(known_cert(cert) for cert in policy.trusted_sts_certs)
        except UnsupportedAlgorithm as exc:
            raise ConfigurationError(f"a trusted STS certificate is unusable: {exc}") from exc

    @property
    def policy(self) -> SecurityPolicy:
        """What this validator enforces."""
        return self._policy

    def validate(
        self, envelope: etree._Element, audience: str, *, address: str | None = None
    ) -> SecurityContext:
        """Check ``envelope`` for the service whose entity id is ``audience``.

        With ``address``, the signed ``wsa:To`` must be exactly that endpoint address.

        Raises the SP-2xx error of the first check that fails (see the module docstring).
        """
        now = self._clock()
        if now.tzinfo is None:
            raise ConfigurationError("the validator's clock must return aware datetimes")
        parts = read_message(envelope)
        self._check_timestamp(parts, now)
        # The assertion's exact bytes: what was read, verified and digested once stays so.
        token_key = hashlib.sha256(etree.tostring(parts.assertion, with_tail=False)).digest()
        token = self._read_assertion(parts.assertion, token_key)
        self._check_claims(token, audience, now)
        holder = self._holder(token, now)
        signed = self._message_signature(parts, token)
        self._verify_assertion(token, token_key)
        self._verify_message(signed, parts, holder, token_key)
        to = (parts.to.text or "").strip()
        if address is not None and to != address:
            raise AddressingHeaderMissing(f"wsa:To {to} is not this endpoint")
        message_id = (parts.message_id.text or "").strip()
        self._remember(message_id, parts, now)
        return SecurityContext(
            authority_cvr=token.cvr_values[0],
            holder_cert=holder.cert,
            holder_subject=holder.subject,
            holder_fingerprint=holder.fingerprint,
            issuer=token.issuer,
            audience=audience,
            assertion_id=token.assertion_id,
            token_not_on_or_after=token.not_on_or_after,
            message_id=message_id,
            action=(parts.action.text or "").strip(),
            to=to,
            transaction_uuid=_signed_transaction_uuid(parts, signed),
        )

    def _read_assertion(self, assertion: etree._Element, key: bytes) -> AssertionFacts:
        # A client sends the same token for hours; its facts are a function of its bytes
        # (``key``), so they are read once. Only the elements are this message's own, and
        # the claims are still judged on every call. Only verified tokens are remembered
        # (``_verify_assertion``): anyone can send a token that reads, and its claims can be
        # as large as the body limit.
        known = self._facts.get(key)
        if known is None:
            return read_assertion(assertion)
        signature = assertion.find(DS_SIGNATURE)  # the one it had when read, same bytes
        if signature is None:  # cannot be, with the same bytes; read it as it is
            return read_assertion(assertion)
        return dataclasses.replace(known, element=assertion, signature=signature)

    # --- claims -------------------------------------------------------------------------

    def _check_timestamp(self, parts: MessageParts, now: datetime) -> None:
        skew = self._policy.clock_skew
        if parts.expires <= parts.created:
            raise TimestampStale("Expires is not after Created")
        if parts.expires - parts.created > self._policy.max_timestamp_lifetime:
            raise TimestampStale(f"lifetime {parts.expires - parts.created} is too long")
        if parts.created > now + skew:
            raise TimestampStale(f"created in the future ({parts.created.isoformat()})")
        if now >= parts.expires + skew:
            raise TimestampStale(f"expired at {parts.expires.isoformat()}")

    def _check_claims(self, token: AssertionFacts, audience: str, now: datetime) -> None:
        skew = self._policy.clock_skew
        issuers = self._policy.trusted_issuers
        if issuers and token.issuer not in issuers:
            raise TokenUntrustedIssuer(f"issuer {token.issuer!r} is not trusted")
        if token.not_before is not None and now + skew < token.not_before:
            raise TokenNotYetValid(f"valid from {token.not_before.isoformat()}")
        if now >= token.not_on_or_after + skew:
            raise TokenExpired(f"valid until {token.not_on_or_after.isoformat()}")
        confirmation_end = token.confirmation_not_on_or_after
        if confirmation_end is not None and now >= confirmation_end + skew:
            raise SubjectConfirmationExpired(f"confirmable until {confirmation_end.isoformat()}")
        restrictions = token.audience_restrictions
        if not restrictions or any(audience not in allowed for allowed in restrictions):
            raise TokenAudienceMismatch(f"the token is not issued for {audience}")
        if len(token.cvr_values) != 1 or not _CVR.fullmatch(token.cvr_values[0]):
            raise TokenAuthorityMissing("CvrNumberIdentifier must be one 8-digit number")

    def _holder(self, token: AssertionFacts, now: datetime) -> KnownCert:
        try:
            holder = cert_from_b64(token.holder_cert_b64)
        except ValueError as exc:
            raise TokenMalformed("the holder-of-key certificate cannot be read") from exc
        # The STS checked it when it issued the token, hours ago perhaps; the platform does
        # not rely on that: an expired certificate no longer stands for its holder.
        skew = self._policy.clock_skew
        not_before = holder.cert.not_valid_before_utc
        not_after = holder.cert.not_valid_after_utc
        if now + skew < not_before:
            raise HolderCertificateNotValid(f"valid from {not_before.isoformat()}")
        if now - skew > not_after:
            raise HolderCertificateNotValid(f"expired at {not_after.isoformat()}")
        return holder

    # --- message signature: shape -------------------------------------------------------

    def _message_signature(self, parts: MessageParts, token: AssertionFacts) -> _Signed:
        try:
            signature = parse_signature(
                parts.signature, allow_enveloped=False, allow_str_transform=True
            )
        except SignatureFormatError as exc:
            raise MessageSignatureInvalid(str(exc)) from exc
        ids = collect_ids(parts.envelope)
        targets: list[tuple[SignedReference, etree._Element]] = []
        unresolved: list[str] = []
        for reference in signature.references:
            target = ids.get(reference.target_id)
            if target is None:
                unresolved.append(reference.target_id)
            else:
                targets.append((reference, target))
        required = [
            ("Body", parts.body),
            ("Framework", parts.framework),
            ("Action", parts.action),
            ("MessageID", parts.message_id),
            ("To", parts.to),
            ("Timestamp", parts.timestamp),
        ]
        if parts.reply_to is not None:
            required.append(("ReplyTo", parts.reply_to))
        # Identity, not equality: the signed element must be the very one the platform reads.
        # The targets are alive (held in ``targets``), so an element with the id of one is it.
        signed_ids = {id(target) for _, target in targets}
        missing = [name for name, part in required if id(part) not in signed_ids]
        # A dangling reference with every required part signed may be the token's own, left
        # behind by a swap: that is told by the binding check below.
        if unresolved and (missing or not self._policy.require_token_binding):
            raise MessageSignatureInvalid(f"#{unresolved[0]} names no element")
        if missing:
            raise SignatureCoverageIncomplete("not signed: " + ", ".join(missing))
        if _key_reference(signature) != token.assertion_id:
            raise HolderOfKeyMismatch("the signature's KeyInfo does not name the assertion")
        # From here on an STR-Transform reference stands for the token its STR names.
        targets = [
            (reference, _dereferenced_token(reference, target, ids))
            if reference.token_reference
            else (reference, target)
            for reference, target in targets
        ]
        bound = any(target is parts.assertion for _, target in targets)
        if self._policy.require_token_binding and not bound:
            raise TokenNotBound("no STR-Transform or direct reference covers the assertion")
        if unresolved:
            raise MessageSignatureInvalid(f"#{unresolved[0]} names no element")
        return _Signed(signature, tuple(targets))

    # --- crypto -------------------------------------------------------------------------

    def _verify_assertion(self, token: AssertionFacts, key: bytes) -> None:
        # A client reuses one token for hours: byte-identical assertions verified before need
        # no second check (same bytes, same canonical form, same digest and signature).
        # Claims, validity and audience are still checked on every call. ``key``: the
        # SHA-256 of the assertion's serialization.
        if key not in self._verified:
            self._verify_assertion_signature(token)
            if len(self._verified) >= _VERIFIED_CACHE_SIZE:
                self._verified.clear()
            self._verified[key] = None
        if key not in self._facts:  # read by ``_read_assertion`` from now on
            if len(self._facts) >= _VERIFIED_CACHE_SIZE:
                self._facts.clear()
            self._facts[key] = dataclasses.replace(token, element=_NOT_KEPT, signature=_NOT_KEPT)

    def _verify_assertion_signature(self, token: AssertionFacts) -> None:
        try:
            signature = parse_signature(token.signature, allow_enveloped=True)
        except SignatureFormatError as exc:
            raise TokenSignatureInvalid(str(exc)) from exc
        references = signature.references
        if len(references) != 1 or references[0].target_id != token.assertion_id:
            raise TokenSignatureInvalid("the STS signature must sign the assertion itself")
        if not references[0].enveloped:
            raise TokenSignatureInvalid("the STS signature must be an enveloped signature")
        candidates = self._sts_candidates(token)
        try:
            intact = digest_matches(references[0], token.element, token.signature)
        except SignatureFormatError as exc:
            raise TokenSignatureInvalid(str(exc)) from exc
        if not intact:
            raise TokenSignatureInvalid("the assertion was changed after the STS signed it")
        for sts in candidates:
            if sts.rsa_key is not None and signature_value_valid(signature, sts.rsa_key):
                return
        if token.signer_cert_b64:
            raise TokenSignatureInvalid("the STS signature value does not verify")
        raise TokenUntrustedIssuer("the assertion is not signed by a trusted STS certificate")

    def _sts_candidates(self, token: AssertionFacts) -> tuple[KnownCert, ...]:
        """The trusted STS keys to try: the one the signature names, else all of them."""
        if not token.signer_cert_b64:
            return self._trusted
        try:
            named = cert_from_b64(token.signer_cert_b64)
        except ValueError as exc:
            raise TokenMalformed("the STS certificate in the signature cannot be read") from exc
        matching = tuple(sts for sts in self._trusted if sts.spki == named.spki)
        if not matching:
            raise TokenUntrustedIssuer(f"signed by {named.subject}, not a trusted STS")
        return matching

    def _verify_message(
        self, signed: _Signed, parts: MessageParts, holder: KnownCert, token_key: bytes
    ) -> None:
        for reference, target in signed.targets:
            try:
                if target is parts.assertion and not reference.enveloped:
                    intact = self._assertion_digest_matches(reference, target, token_key)
                else:
                    intact = digest_matches(reference, target, parts.signature)
            except SignatureFormatError as exc:
                raise MessageSignatureInvalid(str(exc)) from exc
            if not intact and target is parts.assertion:
                # The STS vouched for this assertion: it is whole, but not the one signed.
                raise TokenNotBound(f"the assertion {reference.target_id} is not the one signed")
            if not intact:
                raise MessageSignatureInvalid(f"#{reference.target_id} was changed after signing")
        # Every digest holds, so the content is what was signed: a failing value means the
        # signer's key is not the holder-of-key key the STS vouched for.
        if holder.rsa_key is None or not signature_value_valid(signed.signature, holder.rsa_key):
            raise HolderOfKeyMismatch("the message is not signed with the holder-of-key key")

    def _assertion_digest_matches(
        self, reference: SignedReference, assertion: etree._Element, token_key: bytes
    ) -> bool:
        # The token is the largest part a message signature covers (its c14n about as much
        # as all other parts together), and it is the same for hours. Its exclusive c14n is
        # a function of its serialization (lxml writes every namespace in scope) and the
        # prefix list, so the digest of those bytes is reused; only the comparison with
        # this message's signed digest is done per call. The key is known verified here.
        key = (token_key, reference.inclusive_prefixes)
        # One lookup: another thread may clear the cache between a test and a read.
        digest = self._assertion_digests.get(key)
        if digest is None:
            # b"": it cannot be canonicalized, so it matches no digest.
            digest = reference_digest(reference, assertion, assertion) or b""
            if len(self._assertion_digests) >= _VERIFIED_CACHE_SIZE:
                self._assertion_digests.clear()
            self._assertion_digests[key] = digest
        return bool(digest) and hmac.compare_digest(digest, reference.digest)

    # --- replay -------------------------------------------------------------------------

    def _remember(self, message_id: str, parts: MessageParts, now: datetime) -> None:
        # Remember at least as long as the timestamp could still be accepted.
        expires_at = max(now + self._policy.replay_window, parts.expires + self._policy.clock_skew)
        if not self._replay.remember(message_id, expires_at=expires_at, now=now):
            raise MessageReplayed(message_id)


def _signed_transaction_uuid(parts: MessageParts, signed: _Signed) -> str | None:
    """``TransactionUUID`` when the message signature covers it (or its ``RequestHeader``),
    else None, as if it were absent: an unsigned value could have been changed on the way,
    and KOMBIT's own clients do not sign it, so requiring the signature would refuse them."""
    element = parts.transaction_uuid
    if element is None:
        return None
    # Identity, not equality, as for the required parts: the signed element must be the one read.
    signed_ids = {id(target) for _, target in signed.targets}
    # The targets are alive (held by ``signed``), so an element with the id of one is it.
    if id(element) not in signed_ids and not any(
        id(ancestor) in signed_ids for ancestor in element.iterancestors()
    ):
        return None
    return (element.text or "").strip() or None


def _dereferenced_token(
    reference: SignedReference, target: etree._Element, ids: dict[str, etree._Element]
) -> etree._Element:
    """The assertion the STR-Transform reference's ``SecurityTokenReference`` names."""
    if target.tag != WSSE_STR:
        raise MessageSignatureInvalid(
            f"the STR-Transform of #{reference.target_id} names no SecurityTokenReference"
        )
    token_id = _token_id(target)
    token = ids.get(token_id) if token_id else None
    if token is None or token.tag != SAML_ASSERTION:
        # The signed token is gone from the message: another was put in its place.
        raise TokenNotBound(f"the SecurityTokenReference #{reference.target_id} names no assertion")
    return token


def _key_reference(signature: ParsedSignature) -> str | None:
    """The assertion ID the signature's ``SecurityTokenReference`` names, if it names one."""
    key_info = signature.key_info
    reference = key_info.find(WSSE_STR) if key_info is not None else None
    return _token_id(reference) if reference is not None else None


def _token_id(reference: etree._Element) -> str | None:
    """The assertion ID a ``SecurityTokenReference`` names (KeyIdentifier or Reference)."""
    identifier = reference.find(WSSE_KEY_IDENTIFIER)
    if identifier is not None:
        if identifier.get("ValueType") != SAMLID_VALUE_TYPE:
            return None
        return (identifier.text or "").strip() or None
    direct = reference.find(WSSE_REFERENCE)
    uri = direct.get("URI", "") if direct is not None else ""
    return (uri[1:] or None) if uri.startswith("#") else None
