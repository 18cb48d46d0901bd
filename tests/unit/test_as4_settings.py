"""``[oots.as4]`` settings opened into the access point and its partners."""

from __future__ import annotations

from pathlib import Path

import pytest

from integrations.oots.as4.settings import (
    As4PartnerSettings,
    As4Settings,
    local_access_point,
    partners,
)
from integrations.oots.settings import OOTS_SETTINGS
from serviceplatform.config import Settings
from serviceplatform.config_check import serving_problems
from serviceplatform.errors import ConfigurationError
from serviceplatform.outbound.certstore import CertificateStore
from tests.as4_material import key_pem, party


def _store(tmp_path: Path) -> CertificateStore:
    store = CertificateStore(tmp_path / "certs")
    store.import_pem("as4-sign", party("AP_DK_01").pem, key_pem("AP_DK_01"))
    return store


def test_the_access_point_and_partners_open(tmp_path: Path) -> None:
    (tmp_path / "de.pem").write_bytes(party("AP_DE_01").pem)
    settings = As4Settings(
        party_id="AP_DK_01",
        signing_alias="as4-sign",
        partners={
            "AP_DE_01": As4PartnerSettings(
                endpoint_url="https://de.example/as4", signing_cert="de.pem"
            )
        },
    )
    local = local_access_point(settings, _store(tmp_path))
    assert local.party_id == "AP_DK_01"
    assert local.signing.certificate == party("AP_DK_01").cert
    assert local.decryption.certificate == party("AP_DK_01").cert
    found = partners(settings, path=lambda name: tmp_path / name)
    assert found["AP_DE_01"].signing_certificate == party("AP_DE_01").cert
    assert found["AP_DE_01"].encryption_certificate == party("AP_DE_01").cert
    assert found["AP_DE_01"].endpoint.url == "https://de.example/as4"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (As4Settings(party_id="AP_DK_01"), "not configured"),
        (As4Settings(party_id="AP_DK_01", signing_alias="absent"), "signing_alias 'absent'"),
        (
            As4Settings(party_id="AP_DK_01", signing_alias="as4-sign", decryption_alias="nope"),
            "decryption_alias 'nope'",
        ),
    ],
)
def test_local_problems_name_the_setting(
    tmp_path: Path, settings: As4Settings, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        local_access_point(settings, _store(tmp_path))


@pytest.mark.parametrize(
    ("partner", "message"),
    [
        (As4PartnerSettings(endpoint_url="de.example"), "endpoint_url is not a URL"),
        (As4PartnerSettings(endpoint_url="https://de"), "signing_cert is not set"),
        (As4PartnerSettings(endpoint_url="https://de", signing_cert="x.pem"), "no PEM"),
        (
            As4PartnerSettings(endpoint_url="https://de", signing_cert="de.pem", ca_cert="ca.pem"),
            "ca_cert .* is missing",
        ),
    ],
)
def test_partner_problems_name_the_setting(
    tmp_path: Path, partner: As4PartnerSettings, message: str
) -> None:
    (tmp_path / "de.pem").write_bytes(party("AP_DE_01").pem)
    settings = As4Settings(partners={"AP_DE_01": partner})
    with pytest.raises(ConfigurationError, match=message):
        partners(settings, path=lambda name: tmp_path / name)


@pytest.mark.parametrize(
    ("url", "usable"),
    [
        ("https://de.example/as4", True),
        ("HTTPS://de.example:8443/as4", True),  # the scheme has no case
        ("http://127.0.0.1:8080", True),
        ("https://", False),  # no host
        ("https://:443/as4", False),
        ("https://de.example:x/as4", False),  # no port
        ("https://de.example:70000/as4", False),
        ("ftp://de.example/as4", False),
        ("de.example/as4", False),
    ],
)
def test_a_partner_endpoint_is_judged_by_the_rule_of_config_check(
    tmp_path: Path, url: str, usable: bool
) -> None:
    """One rule: the partners used to accept whatever started with http(s):// ("https://",
    a port "x") and refuse "HTTPS://", the opposite of config check's verdicts."""
    (tmp_path / "de.pem").write_bytes(party("AP_DE_01").pem)
    settings = Settings(base_dir=str(tmp_path))
    oots = settings.section(OOTS_SETTINGS)
    oots.as4.partners["AP_DE_01"] = As4PartnerSettings(endpoint_url=url, signing_cert="de.pem")
    at_start = [p for p in serving_problems(settings) if p.startswith("oots.as4.partners.")]
    assert at_start == (
        []
        if usable
        else [
            f"oots.as4.partners.AP_DE_01.endpoint_url {url!r} "
            "is not an absolute http(s) URL with a host "
            "(https://host[:port]/path)"
        ]
    )
    if usable:
        assert partners(oots.as4, path=settings.path)["AP_DE_01"].endpoint.url == url
    else:
        with pytest.raises(ConfigurationError, match="endpoint_url is not a URL"):
            partners(oots.as4, path=settings.path)
