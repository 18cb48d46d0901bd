"""Audience: every ``AudienceRestriction`` of the token must name the service, and a token
without one is refused (SAML core 2.5.1.4: the conditions of all restrictions must hold)."""

from __future__ import annotations

import pytest
from lxml import etree

from serviceplatform.errors import TokenAudienceMismatch
from serviceplatform.security.wire import SAML_NS, qn
from tests.saml_edit import resign
from tests.unit.test_security_roundtrip import AUDIENCE, Pki, check
from tests.unit.test_security_roundtrip import pki as pki

_CONDITIONS = qn(SAML_NS, "Conditions")
_RESTRICTION = qn(SAML_NS, "AudienceRestriction")
_AUDIENCE = qn(SAML_NS, "Audience")
OTHER = "http://entityid.test.example/service/other/1"


def token_restricted_to(pki: Pki, *restrictions: tuple[str, ...]) -> etree._Element:
    """A token whose Conditions hold exactly ``restrictions`` (one tuple of audiences each)."""
    token = pki.token()
    conditions = token.find(_CONDITIONS)
    assert conditions is not None
    for old in conditions.findall(_RESTRICTION):
        conditions.remove(old)
    for audiences in restrictions:
        restriction = etree.SubElement(conditions, _RESTRICTION)
        for audience in audiences:
            etree.SubElement(restriction, _AUDIENCE).text = audience
    resign(token, *pki.sts)
    return token


@pytest.mark.parametrize(
    "restrictions",
    [
        # One restriction that names us, one that does not: all must hold, so no.
        ((AUDIENCE,), (OTHER,)),
        ((OTHER,), (AUDIENCE,)),
        # No AudienceRestriction at all: a token for anyone is not a token for us.
        (),
        # An empty restriction names nobody.
        ((),),
    ],
)
def test_a_token_not_restricted_to_the_service_by_every_restriction_is_refused(
    pki: Pki, restrictions: tuple[tuple[str, ...], ...]
) -> None:
    with pytest.raises(TokenAudienceMismatch):
        check(pki, pki.message(token_restricted_to(pki, *restrictions)))


@pytest.mark.parametrize(
    "restrictions",
    [
        ((AUDIENCE,),),
        # Within one restriction any audience may be ours.
        ((OTHER, AUDIENCE),),
        ((AUDIENCE,), (OTHER, AUDIENCE)),
    ],
)
def test_a_token_every_restriction_of_which_names_the_service_is_accepted(
    pki: Pki, restrictions: tuple[tuple[str, ...], ...]
) -> None:
    token = token_restricted_to(pki, *restrictions)
    assert check(pki, pki.message(token)).audience == AUDIENCE
