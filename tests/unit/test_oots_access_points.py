"""Which Domibus access point an authority's OOTS requests go through."""

from __future__ import annotations

from integrations.oots.access_points import (
    AccessPoint,
    access_point_for,
    access_points,
    platform_access_point,
)
from integrations.oots.settings import OotsRequesterSettings, OotsSettings

A, B, C = "29189846", "29189854", "29189862"
PLATFORM = AccessPoint(
    url="https://ap.platform.dk/wsplugin",
    party_id="AP_DK_01",
    username="platform",
    password="p",
    ca_cert="certs/domibus-ca.pem",
)


def settings(**requesters: OotsRequesterSettings) -> OotsSettings:
    return OotsSettings(
        domibus_url=PLATFORM.url,
        party_id=PLATFORM.party_id,
        domibus_username=PLATFORM.username,
        domibus_password=PLATFORM.password,
        domibus_ca_cert=PLATFORM.ca_cert,
        requesters=dict(requesters),
    )


def test_an_authority_without_its_own_uses_the_platforms() -> None:
    config = settings(**{A: OotsRequesterSettings(name="Kommune A")})
    assert access_point_for(config, A) == PLATFORM
    assert access_point_for(config, B) == PLATFORM  # not listed at all
    assert access_points(config) == [PLATFORM]


def test_an_authoritys_own_access_point_takes_nothing_of_the_platforms_credentials() -> None:
    own = OotsRequesterSettings(domibus_url="https://ap.kommune-a.dk/wsplugin", party_id="AP_A")
    point = access_point_for(settings(**{A: own}), A)
    assert point == AccessPoint(url=own.domibus_url, party_id="AP_A")


def test_another_plugin_user_on_the_platforms_access_point() -> None:
    own = OotsRequesterSettings(domibus_username="kommune-a", domibus_password_file="a.secret")
    point = access_point_for(settings(**{A: own}), A)
    assert (point.url, point.party_id, point.ca_cert) == (
        PLATFORM.url,
        "AP_DK_01",
        PLATFORM.ca_cert,
    )
    assert (point.username, point.password, point.password_file) == ("kommune-a", "", "a.secret")


def test_every_access_point_in_use_is_listed_once_the_platforms_first() -> None:
    own = OotsRequesterSettings(domibus_url="https://ap.kommune-a.dk/wsplugin", party_id="AP_A")
    config = settings(
        **{A: own, B: OotsRequesterSettings(name="B"), C: OotsRequesterSettings(**own.__dict__)}
    )
    assert access_points(config) == [PLATFORM, access_point_for(config, A)]


def test_unconfigured_access_points_are_not_listed() -> None:
    own = OotsRequesterSettings(domibus_url="https://ap.kommune-a.dk/wsplugin", party_id="AP_A")
    config = OotsSettings(requesters={A: own})
    assert not platform_access_point(config).configured
    assert access_points(config) == [access_point_for(config, A)]
