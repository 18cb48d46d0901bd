"""The sandbox's own settings file, and a user's --config laid over it."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from integrations.oots.settings import OOTS_SETTINGS
from serviceplatform.config import load_settings
from serviceplatform.errors import ConfigurationError
from serviceplatform.sandbox.runner import SandboxPaths, write_platform_config

PKI: Any = SimpleNamespace(sts_cert=Path("/pki/sts.crt"), ca_cert=Path("/pki/ca.crt"))
REGISTER: Any = SimpleNamespace(base_url="https://127.0.0.1:4443")
BASE_URL = "http://127.0.0.1:8123"


def test_written_settings_load(tmp_path: Path) -> None:
    paths = SandboxPaths(tmp_path)
    write_platform_config(paths, PKI, REGISTER, None, base_url=BASE_URL)
    settings = load_settings(paths.config)
    assert settings.peer("nemsms").base_url == "https://127.0.0.1:4443"
    assert settings.security.trusted_sts_certs == ["/pki/sts.crt"]
    # The sandbox checks wsa:To against its own address, as production does.
    assert settings.soap.public_base_url == BASE_URL
    assert settings.service("sf2250").entity_id
    assert paths.config.read_text().startswith("# Written by `serviceplatform sandbox`")


def test_user_config_wins_and_keeps_the_rest(tmp_path: Path) -> None:
    user = tmp_path / "mine.toml"
    user.write_text('[logging]\nlevel = "DEBUG"\n[peers.nemsms]\nread_timeout_seconds = 0.9\n')
    paths = SandboxPaths(tmp_path)
    write_platform_config(paths, PKI, REGISTER, user, base_url=BASE_URL)
    settings = load_settings(paths.config)
    assert settings.logging.level == "DEBUG"
    assert settings.peer("nemsms").read_timeout_seconds == 0.9
    assert settings.peer("nemsms").base_url == "https://127.0.0.1:4443"


def test_top_level_scalar_in_user_config_is_refused(tmp_path: Path) -> None:
    user = tmp_path / "mine.toml"
    user.write_text('level = "DEBUG"\n')
    with pytest.raises(ConfigurationError, match="belongs in a table"):
        write_platform_config(SandboxPaths(tmp_path), PKI, REGISTER, user, base_url=BASE_URL)


def test_the_oots_table_points_at_the_simulated_gateway(tmp_path: Path) -> None:
    gateway: Any = SimpleNamespace(
        base_url="http://127.0.0.1:5001/domibus/services/wsplugin",
        common_services_url="http://127.0.0.1:5001/rest/search",
        as4_endpoint_url="https://127.0.0.1:5002/as4",
        as4_party_ids=["AP_FI_01", "AP_SE_01"],
        as4_cert=tmp_path / "pki" / "oots-as4-partner.crt",
        preview_ca_cert=tmp_path / "pki" / "ca.crt",
    )
    paths = SandboxPaths(tmp_path)
    write_platform_config(paths, PKI, REGISTER, None, gateway, base_url=BASE_URL)
    oots = load_settings(paths.config).section(OOTS_SETTINGS)
    assert oots.domibus_url == gateway.base_url
    assert oots.common_services_url == gateway.common_services_url
    assert oots.party_id == "AP_DK_01" and oots.domibus_username and oots.domibus_password
    assert oots.requesters["29189846"].name
    # Authority A through the WS plugin, B through the platform's own AS4 access point, whose
    # partners are the simulated providers' access points.
    assert oots.requesters["29189846"].gateway == "domibus-ws"
    assert oots.requesters["29189854"].gateway == "as4"
    assert (oots.as4.party_id, oots.as4.signing_alias) == ("AP_DK_02", "oots-as4")
    assert oots.as4.receive_path == "/oots/as4"
    assert sorted(oots.as4.partners) == ["AP_FI_01", "AP_SE_01"]
    partner = oots.as4.partners["AP_FI_01"]
    assert partner.endpoint_url == gateway.as4_endpoint_url
    assert (partner.signing_cert, partner.ca_cert) == (
        str(gateway.as4_cert),
        str(gateway.preview_ca_cert),
    )
    assert load_settings(paths.config).service("oots").entity_id
