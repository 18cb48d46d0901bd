"""The agreements file: the sample is valid and names the sandbox supplier; every problem."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from serviceplatform.errors import RoutingTableInvalid
from serviceplatform.routing.model import Agreement, AgreementStatus, ConsumerSystem
from serviceplatform.routing_files import load_agreements
from serviceplatform.sandbox.admin_tokens import SAMPLE_SUPPLIER_CVR

PROJECT = Path(__file__).resolve().parents[2]
SAMPLE = PROJECT / "routing_tables" / "agreements.toml"
SYSTEM_UUID = "0d7fcabb-3505-4065-a006-d48b1cf50cc2"

SYSTEM = f"""
[[consumer_system]]
uuid = "{SYSTEM_UUID}"
name = "Case system"
supplier_cvr = "12345674"
"""

AGREEMENT = f"""
[[agreement]]
uuid = "9d3d53a2-af28-4372-9c0a-25550c8d048a"
authority_cvr = "29189846"
service = "sf2250"
consumer_system = "{SYSTEM_UUID}"
supplier = "Supplier"
status = "approved"
"""


def _problems(tmp_path: Path, text: str, **kwargs: object) -> list[str]:
    path = tmp_path / "agreements.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RoutingTableInvalid) as caught:
        load_agreements(path, **kwargs)  # type: ignore[arg-type]
    assert caught.value.detail is not None
    prefix = f"{path}: "
    lines = caught.value.detail.splitlines()
    assert all(line.startswith(prefix) for line in lines)
    return [line[len(prefix) :] for line in lines]


def test_the_sample_file_is_valid_and_documents_each_authority() -> None:
    systems, agreements = load_agreements(SAMPLE)
    assert [s.system.name for s in systems] == ["Sandbox case system"]
    # The sandbox registers its own client certificate; the sample names none.
    assert [s.certificate_files for s in systems] == [()]
    status = {(a.authority_cvr, a.service): a.status for a in agreements}
    assert status == {
        ("29189846", "sf2250"): AgreementStatus.APPROVED,
        ("29189854", "sf2250"): AgreementStatus.APPROVED,
        ("29189870", "sf2250"): AgreementStatus.SUSPENDED,
        # Sending SMS (SF1600 Print) needs its own agreement; A and B have one.
        ("29189846", "sf1600"): AgreementStatus.APPROVED,
        ("29189854", "sf1600"): AgreementStatus.APPROVED,
    }, "authority C (29189862) has routes but no agreement"
    assert all(a.register_cert_alias == "platform-register" for a in agreements)
    assert all(a.consumer_system == systems[0].system.uuid for a in agreements)


def test_the_sample_supplier_is_the_sandbox_supplier() -> None:
    (entry,), _ = load_agreements(SAMPLE)
    assert entry.system.supplier_cvr == SAMPLE_SUPPLIER_CVR


def test_certificate_files_resolve_against_the_file(tmp_path: Path) -> None:
    path = tmp_path / "a.toml"
    path.write_text(
        SYSTEM + 'certificates = ["certs/case.pem", "/abs/other.pem"]\n' + AGREEMENT,
        encoding="utf-8",
    )
    (entry,), _ = load_agreements(path)
    assert entry.certificate_files == (tmp_path / "certs" / "case.pem", Path("/abs/other.pem"))


def test_the_old_cert_subject_key_says_what_replaced_it(tmp_path: Path) -> None:
    text = SYSTEM.replace('supplier_cvr = "12345674"', 'cert_subject = "CN=case,C=DK"')
    assert _problems(tmp_path, text + AGREEMENT) == [
        "consumer_system #1: cert_subject is no longer used: systems are known by certificate "
        "fingerprint; list their PEM files under certificates"
    ]


def test_a_minimal_file_with_dates_as_toml_dates_or_strings(tmp_path: Path) -> None:
    path = tmp_path / "a.toml"
    path.write_text(
        SYSTEM + AGREEMENT + 'valid_from = 2024-01-01\nvalid_to = "2024-12-31"\n', encoding="utf-8"
    )
    systems, (agreement,) = load_agreements(path)
    assert systems[0].system.uuid == SYSTEM_UUID
    assert agreement.valid_from == date(2024, 1, 1)
    assert agreement.valid_to == date(2024, 12, 31)
    assert agreement.register_cert_alias is None


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    """As in the routing tables: an editor on Windows may start a UTF-8 file with one, and
    TOML's parser alone would call it an "Invalid statement (at line 1, column 1)"."""
    path = tmp_path / "a.toml"
    path.write_text("\ufeff" + SYSTEM + AGREEMENT, encoding="utf-8")
    systems, (agreement,) = load_agreements(path)
    assert systems[0].system.uuid == SYSTEM_UUID
    assert agreement.consumer_system == SYSTEM_UUID


def test_uuids_are_normalised_to_lower_case(tmp_path: Path) -> None:
    path = tmp_path / "a.toml"
    path.write_text((SYSTEM + AGREEMENT).replace("0d7fcabb", "0D7FCABB"), encoding="utf-8")
    (entry,), (agreement,) = load_agreements(path)
    assert entry.system.uuid == agreement.consumer_system == SYSTEM_UUID


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (('authority_cvr = "29189846"', 'authority_cvr = "29189847"'), "CVR 29189847 fails the"),
        (('authority_cvr = "29189846"', 'authority_cvr = "2918"'), "authority_cvr '2918' is not"),
        (('status = "approved"', 'status = "ok"'), "status 'ok' is not one of requested, "),
        (('uuid = "34b50286', 'uuid = "zz3d53a2'), "uuid 'zz3d53a2-af28-4372-9c0a-25550c8d048a'"),
        (
            (
                f'consumer_system = "{SYSTEM_UUID}"',
                'consumer_system = "12069fae-abb0-4431-b6d2-7ac06824d203"',
            ),
            "consumer_system 12069fae-abb0-4431-b6d2-7ac06824d203 is not declared in this file",
        ),
        (('supplier = "Supplier"\n', ""), "missing key(s) supplier"),
        (('supplier = "Supplier"', 'supplier = "S"\ncolour = "red"'), "unknown key(s) colour"),
        (('supplier = "Supplier"', "supplier = 7"), "supplier must be a non-empty string"),
        (('status = "approved"', 'status = "approved"\nvalid_from = "soon"'), "valid_from must be"),
        (
            (
                'status = "approved"',
                'status = "approved"\nvalid_from = 2025-01-02\nvalid_to = 2025-01-01',
            ),
            "valid_to 2025-01-01 is before valid_from 2025-01-02",
        ),
    ],
)
def test_each_agreement_problem_names_the_entry(
    tmp_path: Path, change: tuple[str, str], problem: str
) -> None:
    text = SYSTEM + AGREEMENT + AGREEMENT.replace("9d3d53a2", "34b50286").replace(*change)
    (found,) = _problems(tmp_path, text)
    assert found.startswith(f"agreement #2: {problem}")


def test_consumer_system_problems(tmp_path: Path) -> None:
    text = (
        SYSTEM
        + SYSTEM
        + SYSTEM.replace(SYSTEM_UUID, "bad").replace('"Case system"', '""')
        + SYSTEM.replace(SYSTEM_UUID, "12069fae-abb0-4431-b6d2-7ac06824d203")
        .replace('"12345674"', '"12345675"')
        .replace('name = "Case system"', 'name = "C"\ncertificates = "one.pem"')
        + AGREEMENT
    )
    assert _problems(tmp_path, text) == [
        f"consumer_system #2: uuid {SYSTEM_UUID} is also used by consumer_system #1",
        "consumer_system #3: uuid 'bad' is not a UUID",
        "consumer_system #3: name must be a non-empty string",
        "consumer_system #4: CVR 12345675 fails the modulus-11 check",
        "consumer_system #4: certificates must be a list of PEM file paths",
    ]


def test_all_problems_are_reported_together(tmp_path: Path) -> None:
    text = (
        "colour = 1\n"
        + SYSTEM
        + AGREEMENT.replace("29189846", "29189847")
        + AGREEMENT.replace('"approved"', '"maybe"')
    )
    assert _problems(tmp_path, text) == [
        "unknown top-level key(s) colour",
        "agreement #1: CVR 29189847 fails the modulus-11 check",
        "agreement #2: status 'maybe' is not one of requested, approved, rejected, suspended, "
        "revoked",
        "agreement #2: uuid 9d3d53a2-af28-4372-9c0a-25550c8d048a is also used by agreement #1",
    ]


def test_unknown_services_when_the_known_ones_are_given(tmp_path: Path) -> None:
    text = SYSTEM + AGREEMENT.replace('"sf2250"', '"sf9999"')
    assert _problems(tmp_path, text, known_services={"sf2250": frozenset({"register"})}) == [
        "agreement #1: unknown service 'sf9999'"
    ]


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(RoutingTableInvalid, match="cannot read"):
        load_agreements(tmp_path / "missing.toml")
    assert _problems(tmp_path, "[[agreement]\n")[0].startswith("Expected")  # the TOML error
    assert _problems(tmp_path, "agreement = 3\n") == [
        "consumer_system and agreement must be arrays of tables ([[...]])"
    ]


def test_an_entry_that_is_not_a_table_and_several_missing_keys(tmp_path: Path) -> None:
    text = "consumer_system = [1]\n" + 'agreement = ["approved"]\n'
    assert _problems(tmp_path, text) == [
        "consumer_system #1: must be a table",
        "agreement #1: must be a table",
    ]
    bare = f'[[consumer_system]]\nuuid = "{SYSTEM_UUID}"\n'
    assert _problems(tmp_path, bare) == ["consumer_system #1: missing key(s) name, supplier_cvr"]
    strange = SYSTEM + 'colour = "red"\nsize = 3\n'
    assert _problems(tmp_path, strange) == ["consumer_system #1: unknown key(s) colour, size"]


@pytest.mark.parametrize("certificates", ['[1, "a.pem"]', '["a.pem", "  "]', '[["a.pem"]]'])
def test_certificates_must_each_be_a_path(tmp_path: Path, certificates: str) -> None:
    text = SYSTEM + f"certificates = {certificates}\n"
    assert _problems(tmp_path, text) == [
        "consumer_system #1: certificates must be a list of PEM file paths"
    ]


def test_a_cert_subject_entry_does_not_hide_the_problems_of_later_systems(tmp_path: Path) -> None:
    old = SYSTEM.replace('supplier_cvr = "12345674"', 'cert_subject = "CN=case,C=DK"')
    later = SYSTEM.replace(SYSTEM_UUID, "bad")
    problems = _problems(tmp_path, old + later)
    assert [p.split(":", 1)[0] for p in problems] == ["consumer_system #1", "consumer_system #2"]
    assert problems[1] == "consumer_system #2: uuid 'bad' is not a UUID"


def test_a_loaded_agreement_carries_every_value_of_its_entry(tmp_path: Path) -> None:
    path = tmp_path / "a.toml"
    path.write_text(
        SYSTEM
        + AGREEMENT
        + 'register_cert_alias = " platform-register "\n'
        + "valid_from = 2025-03-01\nvalid_to = 2025-03-01\n",  # a one-day agreement
        encoding="utf-8",
    )
    (entry,), (agreement,) = load_agreements(path)
    assert entry.system == ConsumerSystem(SYSTEM_UUID, "Case system", "12345674")
    assert agreement == Agreement(
        uuid="9d3d53a2-af28-4372-9c0a-25550c8d048a",
        authority_cvr="29189846",
        service="sf2250",
        consumer_system=SYSTEM_UUID,
        supplier="Supplier",
        status=AgreementStatus.APPROVED,
        register_cert_alias="platform-register",
        valid_from=date(2025, 3, 1),
        valid_to=date(2025, 3, 1),
    )


@pytest.mark.parametrize("alias", ['""', '"   "'])
def test_an_empty_certificate_alias_means_none(tmp_path: Path, alias: str) -> None:
    path = tmp_path / "a.toml"
    path.write_text(SYSTEM + AGREEMENT + f"register_cert_alias = {alias}\n", encoding="utf-8")
    _, (agreement,) = load_agreements(path)
    assert agreement.register_cert_alias is None


def test_a_file_may_leave_out_either_array(tmp_path: Path) -> None:
    path = tmp_path / "a.toml"
    path.write_text("", encoding="utf-8")
    assert load_agreements(path) == ([], [])
    path.write_text(SYSTEM, encoding="utf-8")
    (entry,), agreements = load_agreements(path)
    assert (entry.system.uuid, agreements) == (SYSTEM_UUID, [])
    # Agreements without any system: each names its undeclared system.
    assert _problems(tmp_path, AGREEMENT) == [
        f"agreement #1: consumer_system {SYSTEM_UUID} is not declared in this file"
    ]


def test_several_unknown_top_level_keys_are_named_together(tmp_path: Path) -> None:
    assert _problems(tmp_path, "colour = 1\nsize = 2\n" + SYSTEM) == [
        "unknown top-level key(s) colour, size"
    ]
