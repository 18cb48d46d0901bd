"""The admin API over HTTP: agreement lifecycle, roles on every endpoint, audit, OpenAPI,
and that an administrator's change routes (or stops) the next SOAP call."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from openapi_spec_validator import validate

from serviceplatform.admin.app import ROUTES
from serviceplatform.admin.auth import token_digest
from serviceplatform.config import AdminPrincipal
from serviceplatform.sandbox.nemsms_register import NemSmsRegister
from serviceplatform.sandbox.pki import Pki
from tests.integration.conftest import (
    CaseSystem,
    RegisterHooks,
    RunningPlatform,
    make_settings,
    post,
    start_platform,
)
from tests.integration.sf2250_requests import fault_code, opdater

CONSUMER = "0d7fcabb-3505-4065-a006-d48b1cf50cc2"
A, B, C = "29189846", "29189854", "29189862"
TOKENS = {
    "ops": ("operator", "", ""),
    "adm-a": ("authority_admin", A, ""),
    "adm-b": ("authority_admin", B, ""),
    "adm-c": ("authority_admin", C, ""),
    "supp": ("supplier", "", "Sandbox Supplier"),
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
        return self.session.request(method, self.api + path, headers=headers, timeout=10, **kwargs)

    def ok(self, method: str, path: str, token: str = "ops", **kwargs: Any) -> Any:
        answer = self.call(method, path, token, **kwargs)
        assert answer.status_code in (200, 201), answer.text
        return answer.json()

    def request_c(self, token: str = "supp") -> dict[str, Any]:
        body = {"authority_cvr": C, "service": "sf2250", "consumer_system": CONSUMER}
        if token == "ops":
            body["supplier"] = "Sandbox Supplier"
        created: dict[str, Any] = self.ok("POST", "/agreements", token, json=body)
        return created


@pytest.fixture()
def admin(tmp_path: Path, pki: Pki, register: NemSmsRegister) -> Iterator[Admin]:
    settings = make_settings(tmp_path, pki, register.base_url)
    settings.admin.principals = {
        name: AdminPrincipal(
            role=role, token_sha256=token_digest(name), authority_cvr=cvr, supplier=supplier
        )
        for name, (role, cvr, supplier) in TOKENS.items()
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


# Every endpoint: anonymous callers get 401, roles outside the endpoint's get 403 (or 404).
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
    ("GET", "/consumer-systems", EVERYONE),
    ("GET", "/certificates", {"ops"}),
    ("GET", "/subscriptions/runs", {"ops"} | AUTHORITY_ADMINS),
    ("GET", "/audit", {"ops"} | AUTHORITY_ADMINS),
]
#: The steps (by the operator) that bring a new agreement to where an action is allowed.
PREPARE = {"suspend": ["approve"], "revoke": ["approve"], "resume": ["approve", "suspend"]}


def test_every_route_is_in_the_role_table() -> None:
    sample = "0d7fcabb-3505-4065-a006-d48b1cf50cc2"
    concrete = [(m, "/api" + p.replace("{uuid}", sample)) for m, p, _ in ENDPOINTS]
    for route in ROUTES:
        assert any(m == route.method and route.pattern.match(p) for m, p in concrete), route
    for method, path in concrete:
        assert any(r.method == method and r.pattern.match(path) for r in ROUTES), path


@pytest.mark.parametrize(("method", "path", "allowed"), ENDPOINTS)
def test_roles_on_every_endpoint(admin: Admin, method: str, path: str, allowed: set[str]) -> None:
    def target() -> str:
        if "{uuid}" not in path:
            return path
        uuid = admin.request_c("ops")["uuid"]
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
        else:
            assert answer.status_code in (403, 404), (token, answer.text)
            assert answer.json()["error"]["code"] in ("SP-602", "SP-603")


def _body(path: str) -> dict[str, Any]:
    if path == "/agreements":
        return {
            "authority_cvr": C,
            "service": "sf1600",
            "consumer_system": CONSUMER,
            "supplier": "Sandbox Supplier",
        }
    if path.endswith("configuration"):
        return {"register_cert_alias": "platform-register"}
    return {"reason": "test"}


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
    for body in (
        {"authority_cvr": "12345678", "service": "sf2250", "consumer_system": CONSUMER},
        {"authority_cvr": C, "service": "nope", "consumer_system": CONSUMER},
        {"authority_cvr": C, "service": "sf2250", "consumer_system": "unknown"},
    ):
        answer = admin.call("POST", "/agreements", "supp", json=body)
        assert (answer.status_code, answer.json()["error"]["code"]) == (400, "SP-605")
    garbage = admin.call("POST", "/agreements", "supp", data=b"{not json")
    assert garbage.status_code == 400 and "JSON" in garbage.json()["error"]["text"]
    uuid = admin.request_c()["uuid"]
    wrong_role = admin.call(
        "PUT", f"/agreements/{uuid}/configuration", json={"sysids": {"frobnicator": "1"}}
    )
    assert wrong_role.status_code == 400 and "no role" in wrong_role.json()["error"]["text"]
    assert len(admin.ok("GET", "/agreements")["agreements"]) == before + 1


def test_the_openapi_document_is_valid_and_lists_every_route(admin: Admin) -> None:
    document = admin.session.get(admin.api + "/openapi.json", timeout=10).json()
    validate(document)
    paths = set(document["paths"])
    for route in ROUTES:
        template = route.pattern.pattern.rstrip("$")
        template = template.replace("(?P<agreement_uuid>[0-9a-f-]{36})", "{agreement_uuid}")
        if "(?P<action>" in template:
            for action in ("approve", "reject", "suspend", "resume", "revoke"):
                assert template.split("(?P<action>")[0] + action in paths
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
