"""The gateway Protocol the OOTS exchange talks to, and where its Domibus implementation is made.

The structural checks are typed assignments: ``mypy --strict`` (run on ``tests/`` too) fails
when ``DomibusWsClient`` stops being a ``Gateway``; nothing here asks ``isinstance`` of a
Protocol.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from integrations.oots.access_points import AccessPoint, open_gateway
from integrations.oots.domibus.client import DomibusWsClient
from integrations.oots.gateway import AnswerSource, Gateway, Submitter
from integrations.oots.settings import OotsSettings
from serviceplatform.errors import ConfigurationError
from serviceplatform.outbound.credentials import BasicAuth
from serviceplatform.outbound.transport import HttpTransport

POINT = AccessPoint(url="http://127.0.0.1:1/ws", party_id="AP_DK_01")


def test_the_domibus_ws_client_is_a_gateway() -> None:
    client = DomibusWsClient.connect(POINT.url, retries=0)
    gateway: Gateway = client
    # What the answer store needs of it: a Gateway is both halves.
    submitter: Submitter = gateway
    answers: AnswerSource = gateway
    with gateway as opened:
        assert opened is client
    assert {id(submitter), id(answers)} == {id(client)}


def test_the_gateway_of_an_access_point_is_its_domibus_ws_plugin(tmp_path: Path) -> None:
    (tmp_path / "plugin.secret").write_text("s3cret\n", encoding="utf-8")
    point = AccessPoint(
        url="https://ap.kommune-a.dk/wsplugin",
        party_id="AP_A",
        username="kommune-a",
        password_file="plugin.secret",
    )
    settings = OotsSettings(domibus_timeout_seconds=7.0)
    with open_gateway(point, settings, path=lambda name: tmp_path / name) as gateway:
        assert isinstance(gateway, DomibusWsClient)
        transport = gateway.transport
        assert isinstance(transport, HttpTransport)
        assert (transport.base_url, gateway.peer) == (point.url, "oots_gateway")
        assert gateway.credential == BasicAuth("kommune-a", "s3cret")
        peer = transport.settings
        assert (peer.connect_timeout_seconds, peer.read_timeout_seconds) == (5.0, 7.0)


def test_no_gateway_without_an_access_point_or_its_password() -> None:
    with pytest.raises(ConfigurationError, match="not configured"):
        open_gateway(AccessPoint(url="", party_id=""), OotsSettings())
    point = AccessPoint(POINT.url, POINT.party_id, username="u", password_file="/nonexistent/x")
    with pytest.raises(ConfigurationError, match="domibus_password_file"):
        open_gateway(point, OotsSettings())


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"h\xf8nsehus\n", "is not UTF-8 text"), (b" \n", "holds no password")],
    ids=["latin-1", "blank"],
)
def test_a_password_file_no_plugin_user_could_log_in_with_is_a_configuration_error(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    """The reason config check gives (``settings.read_password_file``). A Latin-1 file used to
    escape as UnicodeDecodeError, and a blank one to send an empty password to Domibus."""
    (tmp_path / "plugin.secret").write_bytes(content)
    point = AccessPoint(POINT.url, POINT.party_id, username="u", password_file="plugin.secret")
    with pytest.raises(ConfigurationError) as caught:
        open_gateway(point, OotsSettings(), path=lambda name: tmp_path / name)
    assert caught.value.detail == (
        f"[oots] domibus_password_file {tmp_path / 'plugin.secret'} {reason}"
    )
