"""``serviceplatform as4 parties|ping|messages`` through click's test runner."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from integrations.oots.as4.commands import as4
from integrations.oots.as4.model import ReceivedAs4
from integrations.oots.as4.receiver import As4ReceiverApp
from integrations.oots.as4.settings import As4AuthoritySettings, As4PartnerSettings, As4Settings
from integrations.oots.as4.usermessage import open_message, pack_user_message, unpack_user_message
from integrations.oots.domibus.inbox import DomibusInbox
from integrations.oots.settings import OOTS_SETTINGS, OotsRequesterSettings
from serviceplatform.commands.context import CliContext
from serviceplatform.config import CertificateSettings, DatabaseSettings, Settings
from serviceplatform.outbound.certstore import CertificateStore
from tests.as4_material import answer, dk_access_point, dk_partner_of_de, key_pem, party
from tests.wsgi_serving import LocalWsgiServer


def _obj(
    tmp_path: Path, url: str = "https://de.example/as4", *, configured: bool = True
) -> CliContext:
    CertificateStore(tmp_path / "certs").import_pem(
        "as4-sign", party("AP_DK_01").pem, key_pem("AP_DK_01")
    )
    (tmp_path / "de.pem").write_bytes(party("AP_DE_01").pem)
    settings = Settings(
        database=DatabaseSettings(url=f"sqlite:///{tmp_path / 'platform.sqlite'}"),
        certificates=CertificateSettings(directory="certs"),
        base_dir=str(tmp_path),
    )
    if configured:
        # What [oots.as4] gives.
        settings.section(OOTS_SETTINGS).as4 = As4Settings(
            party_id="AP_DK_01",
            signing_alias="as4-sign",
            partners={"AP_DE_01": As4PartnerSettings(endpoint_url=url, signing_cert="de.pem")},
        )
    return CliContext(settings)


def test_parties(tmp_path: Path) -> None:
    result = CliRunner().invoke(as4, ["parties"], obj=_obj(tmp_path))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(
        "AP_DK_01  (urn:oasis:names:tc:ebcore:partyid-type:unregistered:oots)"
    )
    assert "CN=AP_DK_01" in lines[1] and "valid until" in lines[1]
    assert lines[3].startswith("AP_DE_01") and lines[3].endswith("https://de.example/as4")
    assert "CN=AP_DE_01" in lines[4]


def test_not_configured_is_one_line_and_exit_1(tmp_path: Path) -> None:
    result = CliRunner().invoke(as4, ["parties"], obj=_obj(tmp_path, configured=False))
    assert result.exit_code == 1
    assert "SP-901" in result.output and "[oots.as4]" in result.output


class _NoStore:
    def store(self, message: ReceivedAs4) -> bool:
        raise AssertionError("the test message is never delivered")


def test_ping(tmp_path: Path) -> None:
    german, platform = dk_partner_of_de()
    with LocalWsgiServer(As4ReceiverApp(german, {"AP_DK_01": platform}, _NoStore())) as server:
        result = CliRunner().invoke(
            as4, ["ping", "AP_DE_01"], obj=_obj(tmp_path, server.base_url + "/as4")
        )
    assert result.exit_code == 0, result.output
    assert re.fullmatch(r"AP_DE_01: receipt \S+@oots\.eu for \S+@oots\.eu\n", result.output)


def test_ping_without_receipt_exits_1(tmp_path: Path) -> None:
    obj = _obj(tmp_path, "http://127.0.0.1:9/as4")
    result = CliRunner().invoke(as4, ["ping", "AP_DE_01"], obj=obj)
    assert result.exit_code == 1 and result.output.startswith("error: SP-790 EBMS:0301")


def test_messages(tmp_path: Path) -> None:
    obj = _obj(tmp_path)
    listed = CliRunner().invoke(as4, ["messages"], obj=obj)
    assert listed.exit_code == 0 and listed.output == "no OOTS messages\n"
    german, _ = dk_partner_of_de()
    packed = pack_user_message(answer(), german.signing, party("AP_DK_01").cert)
    unpacked = unpack_user_message(
        open_message(packed.content_type, packed.body),
        sender_certificates=(party("AP_DE_01").cert,),
        decryption=dk_access_point().decryption,
    )
    DomibusInbox(obj.database()).store(unpacked.message)
    listed = CliRunner().invoke(as4, ["messages", "--limit", "5"], obj=obj)
    assert listed.exit_code == 0
    assert "in   ExecuteQueryResponse  AP_DE_01 -> AP_DK_01  received" in listed.output
    assert answer().message_id in listed.output


def test_parties_shows_which_gateway_each_authority_uses(tmp_path: Path) -> None:
    obj = _obj(tmp_path)
    oots = obj.settings.section(OOTS_SETTINGS)
    oots.domibus_url, oots.party_id = "https://domibus.example/wsplugin", "AP_DK_DOMIBUS"
    oots.requesters = {
        "29189846": OotsRequesterSettings(name="A"),
        "29189854": OotsRequesterSettings(
            name="B", gateway="as4", as4=As4AuthoritySettings(party_id="AP_DK_02")
        ),
    }
    result = CliRunner().invoke(as4, ["parties"], obj=obj)
    assert result.exit_code == 0, result.output
    tail = result.output.splitlines()[-4:]
    assert tail[0] == "authorities:"
    assert tail[1].split() == [
        "29189846",
        "domibus-ws",
        "AP_DK_DOMIBUS",
        "https://domibus.example/wsplugin",
    ]
    assert tail[2].split() == ["29189854", "as4", "AP_DK_02"]
    assert tail[3].split()[:2] == ["(others)", "domibus-ws"]
