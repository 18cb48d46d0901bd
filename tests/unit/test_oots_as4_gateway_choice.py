"""Which gateway an authority uses: ``[oots.requesters.<CVR>] gateway = "domibus-ws" | "as4"``.

For ``as4`` the authority's own ``as4`` values lie over ``[oots.as4]`` field by field (its keys
as a whole), and ``access_points.open_gateway`` (the one place a gateway is built) gives the AS4
gateway with those keys; anything else than the two names is refused by the loader (what
``config check`` lists) and by ``access_point_for``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from integrations.oots.access_points import (
    AccessPoint,
    access_point_for,
    access_points,
    open_gateway,
)
from integrations.oots.as4.access_point import As4Gateway
from integrations.oots.as4.settings import As4AuthoritySettings, As4PartnerSettings, As4Settings
from integrations.oots.domibus.client import DomibusWsClient
from integrations.oots.settings import OOTS_SETTINGS, OotsRequesterSettings, OotsSettings
from serviceplatform.config import read_settings
from serviceplatform.errors import ConfigurationError
from serviceplatform.outbound.certstore import CertificateStore
from tests.as4_material import key_pem, party

A, B, C = "29189846", "29189854", "29189862"
PLATFORM_AS4 = As4Settings(
    party_id="AP_DK_01",
    signing_alias="as4-sign",
    decryption_alias="as4-decrypt",
    receive_path="/oots/as4",
    partners={"AP_DE_01": As4PartnerSettings(endpoint_url="https://de/as4", signing_cert="de")},
)


def _settings(**requesters: OotsRequesterSettings) -> OotsSettings:
    return OotsSettings(
        domibus_url="https://ap.platform.dk/wsplugin",
        party_id="AP_DK_DOMIBUS",
        as4=PLATFORM_AS4,
        requesters=dict(requesters),
    )


def test_domibus_ws_is_the_default_and_as4_is_chosen_per_authority() -> None:
    config = _settings(
        **{A: OotsRequesterSettings(name="A"), B: OotsRequesterSettings(gateway="as4")}
    )
    assert access_point_for(config, A).gateway == "domibus-ws"
    assert access_point_for(config, C).gateway == "domibus-ws"  # not listed
    b = access_point_for(config, B)
    assert (b.gateway, b.party_id, b.as4) == ("as4", "AP_DK_01", PLATFORM_AS4)
    assert b.configured
    # Both are in use: answers are collected from each.
    assert [p.gateway for p in access_points(config)] == ["domibus-ws", "as4"]


def test_an_authority_s_own_as4_values_fall_back_field_by_field() -> None:
    own = As4AuthoritySettings(
        party_id="AP_DK_02",
        partners={"AP_FI_01": As4PartnerSettings(endpoint_url="https://fi/as4")},
    )
    b = access_point_for(_settings(**{B: OotsRequesterSettings(gateway="as4", as4=own)}), B)
    assert b.as4 is not None and b.party_id == "AP_DK_02" == b.as4.party_id
    # Keys, party type, receiving endpoint: the platform's; partners: both.
    assert (b.as4.signing_alias, b.as4.decryption_alias) == ("as4-sign", "as4-decrypt")
    assert b.as4.party_type == PLATFORM_AS4.party_type
    assert b.as4.receive_path == "/oots/as4"
    assert sorted(b.as4.partners) == ["AP_DE_01", "AP_FI_01"]
    # Its own signing key brings its own decryption key (the signing pair), never the
    # platform's decryption key.
    own = As4AuthoritySettings(signing_alias="b-sign")
    b = access_point_for(_settings(**{B: OotsRequesterSettings(gateway="as4", as4=own)}), B)
    assert b.as4 is not None and (b.as4.signing_alias, b.as4.decryption_alias) == ("b-sign", "")


def test_an_unknown_gateway_is_a_configuration_error(tmp_path: Path) -> None:
    config = _settings(**{B: OotsRequesterSettings(gateway="smtp")})
    with pytest.raises(ConfigurationError, match="gateway 'smtp'"):
        access_point_for(config, B)
    file = tmp_path / "platform.toml"
    file.write_text(f'[oots.requesters.{B}]\ngateway = "smtp"\n', encoding="utf-8")
    (problem,) = read_settings(file, {}).problems
    assert problem.startswith(f"setting oots.requesters.{B}.gateway: 'smtp' is not one of")
    file.write_text(f'[oots.requesters.{B}]\ngateway = "as4"\n', encoding="utf-8")
    (problem,) = read_settings(file, {}).problems
    assert problem.startswith(f"oots.requesters.{B}.gateway 'as4' needs an AS4 party_id")
    as4 = '[oots.as4]\nparty_id = "AP_DK_01"\nsigning_alias = "as4-sign"\n'
    file.write_text(f'{as4}[oots.requesters.{B}]\ngateway = "as4"\n', encoding="utf-8")
    loaded = read_settings(file, {})
    assert loaded.problems == []
    assert loaded.settings.section(OOTS_SETTINGS).requesters[B].gateway == "as4"


def test_open_gateway_builds_the_as4_gateway_with_the_authority_s_keys(tmp_path: Path) -> None:
    store = CertificateStore(tmp_path / "certs")
    store.import_pem("as4-sign", party("AP_DK_01").pem, key_pem("AP_DK_01"))
    store.import_pem("as4-decrypt", party("AP_DK_01").pem, key_pem("AP_DK_01"))
    (tmp_path / "de").write_bytes(party("AP_DE_01").pem)
    config = _settings(**{B: OotsRequesterSettings(gateway="as4")})
    point = access_point_for(config, B)
    path = lambda name: tmp_path / name  # noqa: E731
    with open_gateway(point, config, path=path, certificates=store) as gateway:
        assert isinstance(gateway, As4Gateway)
        assert gateway.sender.local.party_id == "AP_DK_01"
        assert gateway.sender.local.signing.certificate == store.certificate("as4-sign")
        assert list(gateway.sender.partners) == ["AP_DE_01"]
        # One attempt per exchange call: the exchange's queue resends.
        assert gateway.sender._pauses == []
    with open_gateway(access_point_for(config, A), config, path=path) as domibus:
        assert isinstance(domibus, DomibusWsClient)
    with pytest.raises(ConfigurationError, match="certificate store"):
        open_gateway(point, config, path=path)
    unconfigured = AccessPoint(url="", party_id="", gateway="as4", as4=As4Settings())
    with pytest.raises(ConfigurationError, match=r"\[oots.as4\]"):
        open_gateway(unconfigured, config, certificates=store)
