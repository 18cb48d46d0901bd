"""The admin API over HTTP: agreement lifecycle, roles on every endpoint, audit, OpenAPI,
and that an administrator's change routes (or stops) the next SOAP call."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from openapi_spec_validator import validate

from serviceplatform.admin.app import MESSAGE, ROUTES
from serviceplatform.admin.auth import token_digest
from serviceplatform.config import AdminPrincipal, PeerSettings
from serviceplatform.sandbox.nemsms_register import NemSmsRegister
from serviceplatform.sandbox.pki import Pki
from serviceplatform.store.audit import AuditEntry
from tests.certificates import make_cert
from tests.integration.conftest import (
    CaseSystem,
    RegisterHooks,
    RunningPlatform,
    make_settings,
    post,
    start_platform,
)
from tests.integration.sf2250_requests import fault_code, opdater
from tests.outbox_rows import add_outbox_row

CONSUMER = "0d7fcabb-3505-4065-a006-d48b1cf50cc2"
A, B, C = "29189846", "29189854", "29189862"
SUPPLIER_CVR, OTHER_SUPPLIER_CVR = "12345674", "31313139"
TOKENS = {
    "ops": ("operator", "", "", ""),
    "adm-a": ("authority_admin", A, "", ""),
    "adm-b": ("authority_admin", B, "", ""),
    "adm-c": ("authority_admin", C, "", ""),
    "supp": ("supplier", "", "Sandbox Supplier", SUPPLIER_CVR),
    "supp-x": ("supplier", "", "Other Supplier", OTHER_SUPPLIER_CVR),
}


@dataclass
class Admin:
    platform: RunningPlatform
    session: requests.Session

    @property
    def api(self) -> str:
        return self.platform.base_url + "/admin/api"

    def call(
        self, method: str, path: str, token: str | None = "ops", **kwargs: Any
    ) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if method in ("POST", "PUT"):
            # What every JSON client sends (the CSRF rule requires it on changing calls).
            headers["Content-Type"] = "application/json"
        headers.update(kwargs.pop("headers", {}))
        return self.session.request(method, self.api + path, headers=headers, timeout=10, **kwargs)

    def ok(self, method: str, path: str, token: str = "ops", **kwargs: Any) -> Any:
        answer = self.call(method, path, token, **kwargs)
        assert answer.status_code in (200, 201), answer.text
        return answer.json()

    def request_c(self, token: str = "supp", service: str = "sf2250") -> dict[str, Any]:
        body = {"authority_cvr": C, "service": service, "consumer_system": CONSUMER}
        if token == "ops":
            body["supplier"] = "Sandbox Supplier"
        created: dict[str, Any] = self.ok("POST", "/agreements", token, json=body)
        return created


@pytest.fixture()
def admin(
    request: pytest.FixtureRequest, tmp_path: Path, pki: Pki, register: NemSmsRegister
) -> Iterator[Admin]:
    """The platform with the admin principals; ``indirect`` False: no SF1601 peers."""
    settings = make_settings(tmp_path, pki, register.base_url)
    if getattr(request, "param", True):
        # What print route sf1601 needs configured (no test here calls them).
        for name in ("sts", "sf1601"):
            settings.peers[name] = PeerSettings(base_url=f"https://{name}.invalid")
    settings.admin.principals = {
        name: AdminPrincipal(
            role=role,
            token_sha256=token_digest(name),
            authority_cvr=cvr,
            supplier=supplier,
            supplier_cvr=supplier_cvr,
        )
        for name, (role, cvr, supplier, supplier_cvr) in TOKENS.items()
    }
    running = start_platform(settings)
    session = requests.Session()
    session.trust_env = False
    yield Admin(running, session)
    running.stop()


def soap_status(admin: Admin, case_system: CaseSystem, cvr: str) -> str | None:
    """None when the call for ``cvr`` succeeds, else its fault code."""
    payload = case_system.envelope(
        opdater("0202902345"), admin.platform.sf2250_url, token={"cvr": cvr}
    )
    answer = post(admin.platform.sf2250_url, payload)
    return None if answer.status_code == 200 else fault_code(answer)


def test_the_whole_lifecycle_and_its_effect_on_calls(
    admin: Admin, case_system: CaseSystem, hooks: RegisterHooks
) -> None:
    assert soap_status(admin, case_system, C) == "SP-301"
    created = admin.request_c()
    assert (created["status"], created["configured"], created["routable"]) == (
        "requested",
        False,
        False,
    )
    assert created["supplier"] == "Sandbox Supplier"
    uuid = created["uuid"]
    # Approved but not configured: still no call (no certificate for the register).
    approved = admin.ok("POST", f"/agreements/{uuid}/approve", "adm-c", json={"reason": "ok"})
    assert (approved["status"], approved["routable"]) == ("approved", False)
    assert soap_status(admin, case_system, C) == "SP-420"
    configured = admin.ok(
        "PUT",
        f"/agreements/{uuid}/configuration",
        json={"sysids": {"register": "2252009"}, "register_cert_alias": "platform-register"},
    )
    assert (configured["configured"], configured["routable"]) == (True, True)
    assert configured["sysids"]["register"] == "2252009"
    hooks.clear()
    assert soap_status(admin, case_system, C) is None
    assert hooks.requests()[0]["path"].startswith("/register/2252009/")
    suspended = admin.ok("POST", f"/agreements/{uuid}/suspend", "adm-c", json={"reason": "audit"})
    assert suspended["status"] == "suspended"
    assert soap_status(admin, case_system, C) == "SP-302"
    admin.ok("POST", f"/agreements/{uuid}/resume", "adm-c")
    assert soap_status(admin, case_system, C) is None
    revoked = admin.ok("POST", f"/agreements/{uuid}/revoke", "ops", json={"reason": "ended"})
    assert revoked["status"] == "revoked"
    hooks.clear()
    assert soap_status(admin, case_system, C) == "SP-302"
    assert hooks.requests() == []
    history = admin.ok("GET", f"/agreements/{uuid}")["history"]
    assert [(e["action"], e["to_status"]) for e in history] == [
        ("request", "requested"),
        ("approve", "approved"),
        ("configure", "approved"),
        ("suspend", "suspended"),
        ("resume", "approved"),
        ("revoke", "revoked"),
    ]
    assert history[3]["reason"] == "audit" and "adm-c" in history[3]["actor"]
    assert history[2]["details"]["sysids"] == {"register": "2252009"}


@pytest.mark.parametrize(
    ("steps", "refused"),
    [
        (["approve"], "approve"),
        (["reject"], "approve"),
        (["reject"], "suspend"),
        ([], "resume"),
        ([], "revoke"),
        (["approve", "revoke"], "resume"),
    ],
)
def test_transitions_not_allowed_from_the_status_are_409(
    admin: Admin, steps: list[str], refused: str
) -> None:
    uuid = admin.request_c()["uuid"]
    for step in steps:
        admin.ok("POST", f"/agreements/{uuid}/{step}", json={"reason": "x"})
    before = admin.ok("GET", f"/agreements/{uuid}")
    answer = admin.call("POST", f"/agreements/{uuid}/{refused}", json={"reason": "x"})
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "SP-604"
    after = admin.ok("GET", f"/agreements/{uuid}")
    assert after["status"] == before["status"] and len(after["history"]) == len(before["history"])


def test_reject_suspend_and_revoke_need_a_reason(admin: Admin) -> None:
    uuid = admin.request_c()["uuid"]
    answer = admin.call("POST", f"/agreements/{uuid}/reject", json={})
    assert (answer.status_code, answer.json()["error"]["code"]) == (400, "SP-605")


def test_an_authority_admin_cannot_touch_another_authoritys_agreement(admin: Admin) -> None:
    uuid = admin.request_c()["uuid"]
    # B neither sees C's agreement nor can approve it; the answer does not reveal it exists.
    assert uuid not in [a["uuid"] for a in admin.ok("GET", "/agreements", "adm-b")["agreements"]]
    for method, path in (("GET", f"/agreements/{uuid}"), ("POST", f"/agreements/{uuid}/approve")):
        answer = admin.call(method, path, "adm-b", json={})
        assert (answer.status_code, answer.json()["error"]["code"]) == (404, "SP-603")
    assert admin.ok("GET", f"/agreements/{uuid}")["status"] == "requested"
    # A's own list has only A's agreements.
    own = admin.ok("GET", "/agreements", "adm-a")["agreements"]
    assert own and {a["authority_cvr"] for a in own} == {A}


# Every endpoint: anonymous callers get 401, roles outside the endpoint's get 403, and an
# authority administrator 404 for another authority's agreement.
EVERYONE = set(TOKENS)
AUTHORITY_ADMINS = {"adm-a", "adm-b", "adm-c"}
ENDPOINTS = [
    ("GET", "/me", EVERYONE),
    ("GET", "/agreements", EVERYONE),
    ("POST", "/agreements", {"ops", "supp"}),
    ("GET", "/agreements/{uuid}", {"ops", "adm-c", "supp"}),
    ("POST", "/agreements/{uuid}/approve", {"ops", "adm-c"}),
    ("POST", "/agreements/{uuid}/reject", {"ops", "adm-c"}),
    ("POST", "/agreements/{uuid}/suspend", {"ops", "adm-c"}),
    ("POST", "/agreements/{uuid}/resume", {"ops", "adm-c"}),
    ("POST", "/agreements/{uuid}/revoke", {"ops", "adm-c"}),
    ("PUT", "/agreements/{uuid}/configuration", {"ops"}),
    ("GET", "/agreements/{uuid}/print-route", {"ops", "adm-c", "supp"}),
    ("PUT", "/agreements/{uuid}/print-route", {"ops"}),
    ("GET", "/consumer-systems", EVERYONE),
    ("POST", "/consumer-systems", {"ops", "supp"}),
    ("GET", "/consumer-systems/{system}", {"ops", "supp"} | AUTHORITY_ADMINS),
    ("POST", "/consumer-systems/{system}/certificates", {"ops", "supp"}),
    ("POST", "/consumer-systems/{system}/deactivate", {"ops", "supp"}),
    ("POST", "/consumer-systems/{system}/activate", {"ops", "supp"}),
    ("GET", "/certificates", {"ops"}),
    ("GET", "/subscriptions/runs", {"ops"} | AUTHORITY_ADMINS),
    ("GET", "/audit", {"ops"} | AUTHORITY_ADMINS),
    ("GET", "/messages", {"ops"} | AUTHORITY_ADMINS),
    # {message}: an undelivered outbox row of authority C, made for the test.
    ("GET", "/messages/{message}", {"ops", "adm-c"}),
    ("POST", "/messages/{message}/resend", {"ops"}),
    ("GET", "/usage", {"ops"} | AUTHORITY_ADMINS),
]
#: The steps (by the operator) that bring a new agreement to where an action is allowed.
PREPARE = {"suspend": ["approve"], "revoke": ["approve"], "resume": ["approve", "suspend"]}


def test_every_route_is_in_the_role_table() -> None:
    sample = "0d7fcabb-3505-4065-a006-d48b1cf50cc2"
    concrete = [
        (
            m,
            "/api"
            + p.replace("{uuid}", sample).replace("{system}", sample).replace("{message}", "o/1"),
        )
        for m, p, _ in ENDPOINTS
    ]
    for route in ROUTES:
        assert any(m == route.method and route.pattern.match(p) for m, p in concrete), route
    for method, path in concrete:
        assert any(r.method == method and r.pattern.match(path) for r in ROUTES), path


@pytest.mark.parametrize(("method", "path", "allowed"), ENDPOINTS)
def test_roles_on_every_endpoint(admin: Admin, method: str, path: str, allowed: set[str]) -> None:
    def target() -> str:
        if "{message}" in path:
            return path.replace("{message}", undelivered_outbox_row(admin, C).replace(":", "/"))
        if "{system}" in path:
            # A system of the supplier "supp", made by the operator, in the state the action needs.
            system = admin.ok("POST", "/consumer-systems", json=_registration())["uuid"]
            if path.endswith("/activate"):
                admin.ok("POST", f"/consumer-systems/{system}/deactivate", json={"reason": "x"})
            return path.replace("{system}", system)
        if "{uuid}" not in path:
            return path
        # Only an SF1600 agreement has a print route (docs/sf1601.md).
        service = "sf1600" if path.endswith("/print-route") else "sf2250"
        uuid = admin.request_c("ops", service)["uuid"]
        for step in PREPARE.get(path.rsplit("/", 1)[-1], []):
            admin.ok("POST", f"/agreements/{uuid}/{step}", json={"reason": "prepare"})
        return path.replace("{uuid}", uuid)

    anonymous = admin.call(method, target(), token=None, json={})
    assert (anonymous.status_code, anonymous.json()["error"]["code"]) == (401, "SP-601")
    assert "Bearer" in anonymous.headers["WWW-Authenticate"]
    wrong = admin.call(method, target(), token="not-a-token", json={})
    assert wrong.status_code == 401
    for token in ("ops", "adm-a", "adm-b", "adm-c", "supp"):
        answer = admin.call(method, target(), token, json=_body(path))
        if token in allowed:
            assert answer.status_code in (200, 201), (token, answer.text)
        elif token in AUTHORITY_ADMINS and "adm-c" in allowed:
            # The role may do this, but not to another authority's agreement: answered as if
            # it did not exist (docs/admin-api.md), never 403, which would confirm it exists.
            # Not found: an agreement, or a message of another authority.
            not_found = "SP-611" if "{message}" in path else "SP-603"
            assert (answer.status_code, answer.json()["error"]["code"]) == (404, not_found)
        else:
            # The role may never do this.
            assert (answer.status_code, answer.json()["error"]["code"]) == (403, "SP-602")


def undelivered_outbox_row(admin: Admin, cvr: str, attempts: int = 1) -> str:
    """The ref of a new pending outbox row of ``cvr`` that failed ``attempts`` times."""
    with admin.platform.platform.db.transaction(write_first=True) as connection:
        row_id = add_outbox_row(
            connection,
            authority_cvr=cvr,
            attempts=attempts,
            last_error="SP-430 the distributor is unavailable" if attempts else None,
        )
    return f"outbox:{row_id}"


def _registration(**extra: str) -> dict[str, Any]:
    return {
        "name": "Case system",
        "supplier_cvr": SUPPLIER_CVR,
        "certificate_pem": make_cert().pem.decode(),
        **extra,
    }


def _body(path: str) -> dict[str, Any]:
    if path == "/consumer-systems":
        return _registration()
    if path.endswith("/certificates"):
        return {"certificate_pem": make_cert().pem.decode()}
    if path == "/agreements":
        return {
            "authority_cvr": C,
            "service": "sf1600",
            "consumer_system": CONSUMER,
            "supplier": "Sandbox Supplier",
        }
    if path.endswith("configuration"):
        return {"register_cert_alias": "platform-register"}
    if path.endswith("print-route"):
        return {"print_route": "sf1601", "reason": "test"}
    return {"reason": "test"}


def test_the_print_route_is_shown_changed_and_audited(admin: Admin) -> None:
    uuid = "b7e2d9a4-5c3f-4f1a-8e6d-2a9c4b7e1f02"  # authority B's print agreement
    assert admin.ok("GET", f"/agreements/{uuid}/print-route") == {
        "agreement": uuid,
        "print_route": "sf1600",
        "credential": "certificate",
        "chosen": False,
    }
    changed = admin.ok(
        "PUT", f"/agreements/{uuid}/print-route", json={"print_route": "sf1601", "reason": "x"}
    )
    assert (changed["print_route"], changed["credential"], changed["chosen"]) == (
        "sf1601",
        "token",
        True,
    )
    refused = admin.call("PUT", f"/agreements/{uuid}/print-route", json={"print_route": "sf9"})
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, "SP-605")
    history = admin.ok("GET", f"/agreements/{uuid}")["history"]
    assert [h["action"] for h in history].count("print_route") == 1
    records = admin.ok("GET", "/audit?limit=20")["records"]
    operations = [(r["operation"], r["outcome"]) for r in records if r["service"] == "admin"]
    assert ("print-route", "ok") in operations and ("print-route", "fault") in operations


@pytest.mark.parametrize("admin", [False], indirect=True, ids=["no SF1601 peers"])
def test_print_route_sf1601_is_refused_without_its_peers(admin: Admin) -> None:
    """It used to be accepted; every print call then failed SP-901 (no [peers.sf1601])."""
    uuid = "b7e2d9a4-5c3f-4f1a-8e6d-2a9c4b7e1f02"  # authority B's print agreement
    refused = admin.call(
        "PUT", f"/agreements/{uuid}/print-route", json={"print_route": "sf1601", "reason": "x"}
    )
    assert refused.status_code == 400
    assert refused.json()["error"] == {
        "code": "SP-605",
        "text": "The administration request is malformed: print route sf1601 needs [peers.sts] "
        "and [peers.sf1601] in the settings, and they have no such section (docs/sf1601.md): "
        "every call would fail with SP-901; the route is unchanged",
    }
    assert admin.ok("GET", f"/agreements/{uuid}/print-route")["chosen"] is False
    # sf1600 needs nothing more.
    kept = admin.ok("PUT", f"/agreements/{uuid}/print-route", json={"print_route": "sf1600"})
    assert (kept["print_route"], kept["chosen"]) == ("sf1600", True)


def test_admin_actions_and_refusals_are_audited(admin: Admin) -> None:
    uuid = admin.request_c()["uuid"]
    admin.ok("POST", f"/agreements/{uuid}/approve", "adm-c", json={"reason": "fine"})
    admin.call("POST", f"/agreements/{uuid}/approve", "adm-b", json={})
    records = admin.ok("GET", "/audit?limit=20")["records"]
    admin_records = [r for r in records if r["service"] == "admin"]
    details = [(r["operation"], r["outcome"], r["detail"]) for r in admin_records]
    assert any(op == "approve" and out == "ok" and "adm-c" in d for op, out, d in details)
    assert any(op == "approve" and out == "fault" and "adm-b" in d for op, out, d in details)
    assert any(op == "request" and "supp" in d for op, _, d in details)


def test_bad_input_gets_a_clear_error_and_changes_nothing(admin: Admin) -> None:
    before = len(admin.ok("GET", "/agreements")["agreements"])
    for body, expected in (
        ({"authority_cvr": "12345678", "service": "sf2250", "consumer_system": CONSUMER}, 400),
        ({"authority_cvr": C, "service": "nope", "consumer_system": CONSUMER}, 400),
        ({"authority_cvr": C, "service": "sf2250", "consumer_system": "unknown"}, 404),
    ):
        answer = admin.call("POST", "/agreements", "supp", json=body)
        code = answer.json()["error"]["code"]
        assert (answer.status_code, code) == (expected, "SP-605" if expected == 400 else "SP-606")
    garbage = admin.call("POST", "/agreements", "supp", data=b"{not json")
    assert garbage.status_code == 400 and "JSON" in garbage.json()["error"]["text"]
    uuid = admin.request_c()["uuid"]
    wrong_role = admin.call(
        "PUT", f"/agreements/{uuid}/configuration", json={"sysids": {"frobnicator": "1"}}
    )
    assert wrong_role.status_code == 400 and "no role" in wrong_role.json()["error"]["text"]
    assert len(admin.ok("GET", "/agreements")["agreements"]) == before + 1


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Content-Type": "text/plain"}, (415, "SP-621")),
        ({"Content-Type": "application/x-www-form-urlencoded"}, (415, "SP-621")),
        ({"Content-Type": "multipart/form-data; boundary=x"}, (415, "SP-621")),
        ({"Origin": "https://evil.example"}, (403, "SP-620")),
        ({"Origin": "null"}, (403, "SP-620")),
        ({"Sec-Fetch-Site": "cross-site"}, (403, "SP-620")),
    ],
)
def test_changing_calls_from_another_site_or_not_json_are_refused(
    admin: Admin, headers: dict[str, str], expected: tuple[int, str]
) -> None:
    """CSRF: what a hostile page can make an operator's browser send changes nothing."""
    uuid = admin.request_c()["uuid"]
    before = admin.ok("GET", f"/agreements/{uuid}")
    listed = len(admin.ok("GET", "/agreements")["agreements"])
    for method, path, body in (
        ("POST", f"/agreements/{uuid}/approve", b'{"reason": "csrf"}'),
        ("PUT", f"/agreements/{uuid}/configuration", b'{"sysids": {"register": "1111111"}}'),
        ("POST", "/agreements", b'{"authority_cvr": "29189846"}'),
    ):
        answer = admin.call(method, path, "adm-c", data=body, headers=headers)
        assert (answer.status_code, answer.json()["error"]["code"]) == expected, answer.text
    assert admin.ok("GET", f"/agreements/{uuid}") == before
    assert len(admin.ok("GET", "/agreements")["agreements"]) == listed
    refusals = admin.ok("GET", "/audit?limit=20")["records"]
    assert sum(r["error_code"] == expected[1] for r in refusals) == 3


def test_a_same_origin_browser_call_passes(admin: Admin) -> None:
    uuid = admin.request_c()["uuid"]
    host = admin.platform.base_url.split("://", 1)[1]
    answer = admin.call(
        "POST",
        f"/agreements/{uuid}/approve",
        "adm-c",
        json={},
        headers={"Origin": f"http://{host}", "Sec-Fetch-Site": "same-origin"},
    )
    assert answer.status_code == 200 and answer.json()["status"] == "approved", answer.text


def test_the_openapi_document_is_valid_and_lists_every_route(admin: Admin) -> None:
    document = admin.session.get(admin.api + "/openapi.json", timeout=10).json()
    validate(document)
    paths = set(document["paths"])
    for route in ROUTES:
        template = route.pattern.pattern.rstrip("$")
        template = template.replace("(?P<agreement_uuid>[0-9a-f-]{36})", "{agreement_uuid}")
        template = template.replace("(?P<system_uuid>[0-9a-f-]{36})", "{system_uuid}")
        template = template.replace(MESSAGE, "{source}/{key}")
        if "(?P<action>" in template:
            for action in ("approve", "reject", "suspend", "resume", "revoke"):
                assert template.split("(?P<action>")[0] + action in paths
        elif "(?P<state>" in template:
            for state in ("activate", "deactivate"):
                assert template.split("(?P<state>")[0] + state in paths
        else:
            assert template in paths, template
            assert route.method.lower() in document["paths"][template]


def test_the_page_is_served(admin: Admin) -> None:
    redirect = admin.session.get(
        admin.platform.base_url + "/admin", timeout=10, allow_redirects=False
    )
    assert redirect.status_code == 308 and redirect.headers["Location"] == "/admin/"
    page = admin.session.get(admin.platform.base_url + "/admin/", timeout=10)
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    assert (
        admin.session.get(admin.platform.base_url + "/admin/../app.py", timeout=10).status_code
        == 404
    )


@pytest.mark.parametrize(("trusted", "expected"), [(["127.0.0.1"], 200), (["10.9.9.9"], 401)])
def test_client_certificate_subject_from_a_trusted_proxy_only(
    tmp_path: Path, pki: Pki, register: NemSmsRegister, trusted: list[str], expected: int
) -> None:
    settings = make_settings(tmp_path, pki, register.base_url)
    settings.admin.client_cert_subject_header = "X-Client-Subject"
    settings.admin.trusted_proxies = trusted
    settings.admin.principals = {
        "ops-cert": AdminPrincipal(role="operator", cert_subject="CN=ops,O=Kommune,C=DK")
    }
    running = start_platform(settings)
    try:
        session = requests.Session()
        session.trust_env = False
        answer = session.get(
            running.base_url + "/admin/api/me",
            headers={"X-Client-Subject": "CN=ops,O=Kommune,C=DK"},
            timeout=10,
        )
        assert answer.status_code == expected, answer.text
        if expected == 200:
            assert answer.json()["name"] == "ops-cert"
            unknown = session.get(
                running.base_url + "/admin/api/me",
                headers={"X-Client-Subject": "CN=someone else"},
                timeout=10,
            )
            assert unknown.status_code == 401
    finally:
        running.stop()


def test_onboarding_a_system_through_the_api_routes_its_calls(
    admin: Admin, case_system: CaseSystem, hooks: RegisterHooks
) -> None:
    # A new case system with its own certificate: unknown until registered.
    new = make_cert("CN=new case system,O=Sandbox Supplier,C=DK")
    caller = replace(case_system, holder_cert=new.cert, holder_key=new.key)
    assert soap_status(admin, caller, A) == "SP-216"
    system = admin.ok(
        "POST",
        "/consumer-systems",
        "supp",
        json=_registration(name="New", supplier_cvr="", certificate_pem=new.pem.decode()),
    )
    # A supplier registers for itself, whatever supplier_cvr it sends.
    assert (system["supplier_cvr"], system["active"], system["callable"]) == (
        SUPPLIER_CVR,
        True,
        True,
    )
    assert system["certificates"][0]["fingerprint_sha256"] == new.fingerprint
    # Known now, but without an agreement of its own: not routed.
    assert soap_status(admin, caller, A) == "SP-301"
    created = admin.ok(
        "POST",
        "/agreements",
        "supp",
        json={"authority_cvr": A, "service": "sf2250", "consumer_system": system["uuid"]},
    )
    admin.ok("POST", f"/agreements/{created['uuid']}/approve", "adm-a")
    admin.ok(
        "PUT",
        f"/agreements/{created['uuid']}/configuration",
        json={"register_cert_alias": "platform-register"},
    )
    hooks.clear()
    assert soap_status(admin, caller, A) is None
    history = admin.ok("GET", f"/consumer-systems/{system['uuid']}", "supp")["history"]
    assert [e["action"] for e in history] == ["register"]
    records = admin.ok("GET", "/audit?limit=20")["records"]
    assert any(
        r["operation"] == "register" and r["outcome"] == "ok" and "consumer system" in r["detail"]
        for r in records
    )


def test_a_supplier_requests_agreements_only_for_its_own_systems(admin: Admin) -> None:
    other = admin.ok(
        "POST", "/consumer-systems", json=_registration(supplier_cvr=OTHER_SUPPLIER_CVR)
    )
    before = len(admin.ok("GET", "/agreements")["agreements"])
    body = {"authority_cvr": C, "service": "sf2250", "consumer_system": other["uuid"]}
    refused = admin.call("POST", "/agreements", "supp", json=body)
    # The same answer as for an unknown system: no probing for other suppliers' systems.
    assert (refused.status_code, refused.json()["error"]["code"]) == (404, "SP-606")
    assert len(admin.ok("GET", "/agreements")["agreements"]) == before
    assert admin.call("POST", "/agreements", "supp-x", json=body).status_code == 201
    # Each supplier sees only its own systems.
    seen = {s["uuid"] for s in admin.ok("GET", "/consumer-systems", "supp")["consumer_systems"]}
    assert other["uuid"] not in seen and CONSUMER in seen
    for path in (
        f"/consumer-systems/{other['uuid']}",
        f"/consumer-systems/{other['uuid']}/deactivate",
    ):
        method = "GET" if path.count("/") == 2 else "POST"
        answer = admin.call(method, path, "supp", json={"reason": "x"})
        assert (answer.status_code, answer.json()["error"]["code"]) == (404, "SP-606")
    assert admin.ok("GET", f"/consumer-systems/{other['uuid']}")["active"] is True


def test_a_certificate_cannot_belong_to_two_systems_and_bad_ones_are_refused(admin: Admin) -> None:
    cert = make_cert()
    admin.ok(
        "POST", "/consumer-systems", json=_registration() | {"certificate_pem": cert.pem.decode()}
    )
    before = len(admin.ok("GET", "/consumer-systems")["consumer_systems"])
    again = admin.call(
        "POST", "/consumer-systems", json=_registration() | {"certificate_pem": cert.pem.decode()}
    )
    assert (again.status_code, again.json()["error"]["code"]) == (409, "SP-607")
    expired = make_cert(not_before=datetime.now(UTC) - timedelta(days=30), days=10)
    for pem, code in (
        ("not a certificate", "SP-608"),
        (expired.pem.decode(), "SP-608"),
        (make_cert().pem.decode() * 2, "SP-608"),
    ):
        answer = admin.call(
            "POST", "/consumer-systems", json=_registration() | {"certificate_pem": pem}
        )
        assert (answer.status_code, answer.json()["error"]["code"]) == (400, code), answer.text
    bad_cvr = admin.call("POST", "/consumer-systems", json=_registration(supplier_cvr="12345675"))
    assert (bad_cvr.status_code, bad_cvr.json()["error"]["code"]) == (400, "SP-605")
    assert len(admin.ok("GET", "/consumer-systems")["consumer_systems"]) == before


def test_a_supplier_never_sees_the_authoritys_sysids(admin: Admin) -> None:
    uuid = admin.request_c()["uuid"]
    admin.ok(
        "PUT",
        f"/agreements/{uuid}/configuration",
        json={"sysids": {"register": "2252077"}, "register_cert_alias": "platform-register"},
    )
    operator_view = admin.ok("GET", f"/agreements/{uuid}")
    assert operator_view["sysids"]["register"] == "2252077"
    assert "2252077" in str(operator_view["history"])
    listed = [a for a in admin.ok("GET", "/agreements", "supp")["agreements"] if a["uuid"] == uuid]
    single = admin.call("GET", f"/agreements/{uuid}", "supp")
    for shown in (listed[0], single.json()):
        assert (shown["sysids"], shown["register_cert_alias"]) == (None, None)
        assert shown["configured"] is True and shown["status"] == "requested"
    assert "2252077" not in single.text and "2252077" not in str(listed)
    assert "platform-register" not in single.text
    # The agreement a supplier has just requested comes back the same way.
    created = admin.request_c()
    assert (created["sysids"], created["register_cert_alias"]) == (None, None)
    # The authority's administrator still sees them.
    assert admin.ok("GET", f"/agreements/{uuid}", "adm-c")["sysids"]["register"] == "2252077"


def test_an_authority_administrator_sees_its_own_outbox_counts(admin: Admin) -> None:
    states = {
        f"{authority}-{n}-{state}": (authority, state, n % 2 if state == "pending" else 0)
        for authority, count in ((A, 2), (B, 5))
        for n in range(count)
        for state in ("pending", "delivered")
    }
    with admin.platform.platform.db.transaction() as connection:
        for message_id, (authority, state, attempts) in states.items():
            add_outbox_row(
                connection,
                authority_cvr=authority,
                message_id=message_id,
                topic="test",
                body="{}",
                state=state,
                attempts=attempts,
            )
    everything = admin.ok("GET", "/subscriptions/runs")["outbox"]
    assert everything == {"pending": 7, "delivered": 7, "failing": 3}
    assert admin.ok("GET", "/subscriptions/runs", "adm-a")["outbox"] == {
        "pending": 2,
        "delivered": 2,
        "failing": 1,
    }
    assert admin.ok("GET", "/subscriptions/runs", "adm-b")["outbox"] == {
        "pending": 5,
        "delivered": 5,
        "failing": 2,
    }
    assert admin.ok("GET", "/subscriptions/runs", "adm-c")["outbox"] == {
        "pending": 0,
        "delivered": 0,
        "failing": 0,
    }


# --- the message log and usage overview --------------------------------------------------------


def _write_call(admin: Admin, cvr: str, subject: str, outcome: str = "ok", **extra: Any) -> None:
    admin.platform.platform.audit.write(
        AuditEntry(
            at=datetime.now(UTC),
            service="sf2250",
            operation="opdater",
            outcome=outcome,  # type: ignore[arg-type]
            latency_ms=20.0,
            authority_cvr=cvr,
            subject=subject,
            error_code="SP-405" if outcome == "fault" else None,
            **extra,
        )
    )


def test_the_message_log_is_scoped_filtered_masked_and_paged(admin: Admin) -> None:
    _write_call(admin, A, "0101901234", message_id="urn:uuid:a-1")
    _write_call(admin, B, "0202902345", outcome="fault")
    everything = admin.ok("GET", "/messages?service=sf2250")["messages"]
    assert [(m["authority_cvr"], m["subject"]) for m in everything] == [
        (B, "020290****"),  # the operator sees CPR numbers masked...
        (A, "010190****"),
    ]
    found = admin.ok("GET", "/messages?subject=0101901234")["messages"]  # ...and finds by one
    assert [m["message_id"] for m in found] == ["urn:uuid:a-1"]
    own = admin.ok("GET", "/messages?service=sf2250&authority_cvr=" + B, "adm-a")["messages"]
    assert [(m["authority_cvr"], m["subject"]) for m in own] == [(A, "0101901234")]
    faults = admin.ok("GET", "/messages?outcome=fault&error_code=SP-405")["messages"]
    assert [m["authority_cvr"] for m in faults] == [B]
    first = admin.ok("GET", "/messages?service=sf2250&limit=1")
    second = admin.ok("GET", f"/messages?service=sf2250&limit=1&after={first['next']}")
    assert [m["authority_cvr"] for m in first["messages"] + second["messages"]] == [B, A]
    assert second["next"] is None
    bad = admin.call("GET", "/messages?after=nonsense")
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "SP-605")
    ref = own[0]["ref"].replace(":", "/")
    hidden = admin.call("GET", f"/messages/{ref}", "adm-b")
    assert (hidden.status_code, hidden.json()["error"]["code"]) == (404, "SP-611")
    detail = admin.ok("GET", f"/messages/{ref}", "adm-a")
    assert detail["sections"][0]["rows"][0]["subject"] == "0101901234"
    assert admin.ok("GET", f"/messages/{ref}")["sections"][0]["rows"][0]["subject"] == (
        "010190****"
    )


def test_the_operator_resends_an_undelivered_row_and_it_is_audited(admin: Admin) -> None:
    ref = undelivered_outbox_row(admin, C, attempts=2)
    path = "/messages/" + ref.replace(":", "/")
    shown = admin.ok("GET", path)
    assert (shown["resendable"], shown["message"]["outcome"]) == (True, "fault")
    assert admin.ok("GET", path, "adm-c")["resendable"] is False  # not theirs to resend
    refused = admin.call("POST", path + "/resend", "adm-c", json={})
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "SP-602")
    resent = admin.ok("POST", path + "/resend", json={})
    assert resent["sent"] is True and resent["message"]["state"] == "delivered"
    again = admin.call("POST", path + "/resend", json={})
    assert (again.status_code, again.json()["error"]["code"]) == (409, "SP-612")
    records = admin.ok("GET", "/messages?service=admin&operation=resend")["messages"]
    # Newest first: the operator's refused second try, its resend, C's refused try.
    assert [(r["outcome"], r["error_code"]) for r in records] == [
        ("fault", "SP-612"),
        ("ok", None),
        ("fault", "SP-602"),
    ]
    assert records[1]["authority_cvr"] == C
    assert [r["detail"].split(":")[0] for r in records] == [
        "ops (operator)",
        "ops (operator)",
        "adm-c (authority_admin)",
    ]
    assert all(f"resend message {ref}" in r["detail"] for r in records)


def test_usage_per_authority_service_and_day(admin: Admin) -> None:
    for _ in range(3):
        _write_call(admin, A, "0101901234")
    _write_call(admin, A, "0101901234", outcome="fault")
    _write_call(admin, B, "0202902345")
    usage = admin.ok("GET", "/usage")
    today = datetime.now(UTC).date().isoformat()
    rows = {(r["authority_cvr"], r["service"]): r for r in usage["rows"] if r["day"] == today}
    assert (rows[(A, "sf2250")]["calls"], rows[(A, "sf2250")]["error_rate"]) == (4, 0.25)
    assert rows[(A, "sf2250")]["p95_ms"] == 20.0
    assert (B, "sf2250") in rows and not any(s == "admin" for _, s in rows)
    assert len(usage["days"]) == 30 and usage["days"][-1]["day"] == today
    own = admin.ok("GET", "/usage?authority_cvr=" + B, "adm-a")
    assert {r["authority_cvr"] for r in own["rows"]} == {A}
    assert admin.call("GET", "/usage", "supp").status_code == 403
