"""The admin web page end to end in Debian's headless Chromium (driven by Selenium).

The platform runs in-process with admin principals; agreements are prepared through the JSON
API, then a person's steps are taken in the page: sign in with a token, filter, approve with
a reason in the confirmation dialog, and the next SOAP call for that authority passes. Also:
another authority's administrator does not see the agreement, a wrong token is refused with
the API's 401 message, and the operator sees the platform's certificates with days left.

Chromium is not optional: without ``/usr/bin/chromium`` and ``/usr/bin/chromedriver`` the tests
fail (with the install command), in CI and locally. Selenium is told both paths and runs
offline, so Selenium Manager never downloads a browser or a driver.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import pytest
import requests
from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.chrome.options import Options as ChromeOptions
from selenium.webdriver.chrome.service import Service as ChromeService
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

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

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL = "apt-get update && apt-get install -y chromium chromium-driver"

CONSUMER = "0d7fcabb-3505-4065-a006-d48b1cf50cc2"
SUPPLIER = "Sandbox Supplier"
#: The sample consumer system's supplier CVR (the supplier's), and another supplier's.
SUPPLIER_CVR, OTHER_SUPPLIER_CVR = "12345674", "31313139"
#: Sample authorities: B has an approved sf2250 agreement, C routes but has no agreement.
B, C = "29189854", "29189862"
#: Principal name -> (role, authority CVR, supplier, supplier CVR); each gets a random token
#: per run.
PRINCIPALS = {
    "ops": ("operator", "", "", ""),
    "adm-b": ("authority_admin", B, "", ""),
    "adm-c": ("authority_admin", C, "", ""),
    "supp": ("supplier", "", SUPPLIER, SUPPLIER_CVR),
}
TOKENS = {name: secrets.token_urlsafe(24) for name in PRINCIPALS}
WAIT = 15.0

T = TypeVar("T")


# --- the platform and its JSON API -----------------------------------------------------------


@dataclass
class AdminApi:
    base_url: str
    session: requests.Session

    def call(self, method: str, path: str, who: str, **kwargs: Any) -> Any:
        answer = self.session.request(
            method,
            f"{self.base_url}/admin/api{path}",
            headers={"Authorization": f"Bearer {TOKENS[who]}"},
            timeout=10,
            **kwargs,
        )
        assert answer.status_code in (200, 201), answer.text
        return answer.json()

    def request_for_c(self) -> dict[str, Any]:
        created: dict[str, Any] = self.call(
            "POST",
            "/agreements",
            "supp",
            json={"authority_cvr": C, "service": "sf2250", "consumer_system": CONSUMER},
        )
        assert created["status"] == "requested"
        return created


@pytest.fixture()
def platform(tmp_path: Path, pki: Pki, register: NemSmsRegister) -> Iterator[RunningPlatform]:
    settings = make_settings(tmp_path, pki, register.base_url)
    settings.admin.principals = {
        name: AdminPrincipal(
            role=role,
            token_sha256=token_digest(TOKENS[name]),
            authority_cvr=cvr,
            supplier=supplier,
            supplier_cvr=supplier_cvr,
        )
        for name, (role, cvr, supplier, supplier_cvr) in PRINCIPALS.items()
    }
    running = start_platform(settings)
    yield running
    running.stop()


@pytest.fixture()
def admin_api(platform: RunningPlatform) -> Iterator[AdminApi]:
    session = requests.Session()
    session.trust_env = False
    yield AdminApi(platform.base_url, session)
    session.close()


def soap_fault(platform: RunningPlatform, case_system: CaseSystem, cvr: str) -> str | None:
    """None when an SF2250 call for ``cvr`` answers HTTP 200, else the fault's ErrorCode."""
    url = platform.sf2250_url
    answer = post(url, case_system.envelope(opdater("0202902345"), url, token={"cvr": cvr}))
    return None if answer.status_code == 200 else fault_code(answer)


# --- the browser ---------------------------------------------------------------------------------


def _require_chromium() -> None:
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.is_file()]
    if not missing:
        return
    where = (
        "in CI: .ci/run must install them"
        if os.environ.get("CI") == "true"
        else "install them (as root)"
    )
    pytest.fail(
        f"the admin page test needs Debian's headless Chromium; missing {', '.join(missing)}; "
        f"{where}: {INSTALL}",
        pytrace=False,
    )


@pytest.fixture()
def driver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WebDriver]:
    _require_chromium()
    # Selenium Manager must not fetch anything; the driver talks to localhost only.
    monkeypatch.setenv("SE_OFFLINE", "1")
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    options = ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-proxy-server",
        "--no-first-run",
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(argument)
    service = ChromeService(
        executable_path=str(CHROMEDRIVER), log_output=str(tmp_path / "chromedriver.log")
    )
    browser = webdriver.Chrome(options=options, service=service)
    browser.set_page_load_timeout(30)
    try:
        yield browser
    finally:
        browser.quit()


@dataclass
class Page:
    """The admin page in the browser, found by its ``data-testid`` attributes."""

    driver: WebDriver
    base_url: str
    evidence: Path

    def wait(self, condition: Callable[[WebDriver], Literal[False] | T], what: str) -> T:
        waiting: WebDriverWait[WebDriver] = WebDriverWait(
            self.driver,
            WAIT,
            ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
        )
        try:
            return waiting.until(condition, what)
        except TimeoutException:
            raise AssertionError(f"timed out waiting for {what}") from None

    def find(self, testid: str, within: WebElement | None = None) -> WebElement:
        return (within or self.driver).find_element(By.CSS_SELECTOR, f'[data-testid="{testid}"]')

    def find_all(self, testid: str, within: WebElement | None = None) -> list[WebElement]:
        return (within or self.driver).find_elements(By.CSS_SELECTOR, f'[data-testid="{testid}"]')

    def row(self, uuid: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, f'tr[data-uuid="{uuid}"]')

    def rows(self) -> list[WebElement]:
        return self.find_all("agreement-row")

    def visible(self, testid: str) -> WebElement:
        def shown(_: WebDriver) -> WebElement | Literal[False]:
            element = self.find(testid)
            return element if element.is_displayed() else False

        return self.wait(shown, f"{testid} to be visible")

    def agreements_ready(self, caption_part: str = "") -> None:
        self.wait(
            lambda _: (
                self.find("agreements-table").get_attribute("data-state") == "ready"
                and caption_part in self.find("agreements-caption").text
            ),
            f"the agreements to load ({caption_part or 'no filter'})",
        )

    def open(self) -> None:
        self.driver.get(self.base_url + "/admin/")

    def sign_in(self, who: str) -> None:
        self.type_token(TOKENS[who])
        self.visible("greeting")
        self.agreements_ready()

    def type_token(self, token: str) -> None:
        field = self.visible("token-input")
        field.clear()
        field.send_keys(token)
        self.find("sign-in").click()

    def sign_out(self) -> None:
        self.find("sign-out").click()
        self.visible("token-input")

    @contextmanager
    def on_failure_screenshot(self, name: str) -> Iterator[None]:
        try:
            yield
        except BaseException as error:
            shot = self.evidence / f"{name}.png"
            html = self.evidence / f"{name}.html"
            try:
                self.driver.save_screenshot(str(shot))
                html.write_text(self.driver.page_source, encoding="utf-8")
                error.add_note(f"browser evidence: {shot} and {html}")
            except Exception as problem:  # the browser itself may be what failed
                error.add_note(f"no screenshot: {problem}")
            raise


@pytest.fixture()
def page(driver: WebDriver, platform: RunningPlatform, tmp_path: Path) -> Page:
    opened = Page(driver, platform.base_url, tmp_path)
    opened.open()
    return opened


# --- the tests ------------------------------------------------------------------------------


def test_an_authority_admin_approves_in_the_page_and_the_next_call_passes(
    page: Page,
    admin_api: AdminApi,
    platform: RunningPlatform,
    case_system: CaseSystem,
    hooks: RegisterHooks,
) -> None:
    created = admin_api.request_for_c()
    uuid = created["uuid"]
    configured = admin_api.call(
        "PUT",
        f"/agreements/{uuid}/configuration",
        "ops",
        json={"register_cert_alias": "platform-register", "sysids": {"register": "2252001"}},
    )
    assert (configured["status"], configured["configured"], configured["routable"]) == (
        "requested",
        True,
        False,
    )
    assert soap_fault(platform, case_system, C) in ("SP-301", "SP-302")

    with page.on_failure_screenshot("approve"):
        page.sign_in("adm-c")
        assert C in page.find("greeting").text
        # An authority administrator sees only its own agreements and no Certificates tab.
        assert not page.find("tab-certificates").is_displayed()
        assert page.find("tab-audit").is_displayed()

        Select(page.find("filter-status")).select_by_value("requested")
        page.agreements_ready("status requested")
        rows = page.rows()
        assert [r.get_attribute("data-uuid") for r in rows] == [uuid]
        assert {r.get_attribute("data-status") for r in rows} == {"requested"}
        row = page.row(uuid)
        assert page.find("cell-authority", row).text == C
        assert page.find("status-badge", row).text == "requested"
        assert "register: 2252001" in page.find("cell-sysids", row).text.splitlines()
        assert page.find("configured", row).text == "configured"
        assert page.find("routable", row).text == "not routable"
        # Only the transitions a requested agreement allows.
        actions = [b.get_attribute("data-testid") for b in row.find_elements(By.TAG_NAME, "button")]
        assert actions == ["action-details", "action-approve", "action-reject"]

        page.find("action-approve", row).click()
        dialog = page.visible("confirm-dialog")
        text = page.find("confirm-text", dialog).text
        assert C in text and "sf2250" in text and "Sandbox case system" in text
        assert page.find("confirm-ok", dialog).text == "Approve"
        page.find("confirm-reason", dialog).send_keys("Data processing agreement signed")
        page.find("confirm-ok", dialog).click()

        page.wait(
            lambda _: page.find("status-badge", page.row(uuid)).text == "approved",
            "the row to show approved",
        )
        assert not page.find("confirm-dialog").is_displayed()
        notice = page.visible("notice").text
        assert "Approved" in notice and C in notice and "approved" in notice
        row = page.row(uuid)
        assert page.find("routable", row).text == "routable"
        assert page.find_all("action-approve", row) == []
        assert [b.text for b in row.find_elements(By.CSS_SELECTOR, "[data-action]")] == [
            "Suspend",
            "Revoke",
        ]

        # The history in the detail view names who approved and why.
        page.find("action-details", row).click()
        detail = page.visible("agreement-detail")
        history = page.find_all("history-row", detail)
        assert len(history) == 3
        assert "adm-c" in history[-1].text
        assert "Data processing agreement signed" in history[-1].text

    hooks.clear()
    assert soap_fault(platform, case_system, C) is None
    assert hooks.requests()[0]["path"].startswith("/register/2252001/")
    last = admin_api.call("GET", f"/agreements/{uuid}", "ops")["history"][-1]
    assert (last["action"], last["reason"]) == ("approve", "Data processing agreement signed")
    assert "adm-c" in last["actor"]


def test_another_authoritys_admin_neither_sees_nor_approves_it(
    page: Page, admin_api: AdminApi
) -> None:
    uuid = admin_api.request_for_c()["uuid"]
    with page.on_failure_screenshot("other-authority"):
        page.sign_in("adm-b")
        assert B in page.find("greeting").text
        rows = page.rows()
        assert rows, "B's own agreement is listed"
        assert {r.get_attribute("data-authority") for r in rows} == {B}
        assert uuid not in [r.get_attribute("data-uuid") for r in rows]
        assert page.find_all("action-approve") == []
        # Filtering by C's CVR is not even offered to an authority administrator.
        assert not page.find("filter-authority").is_displayed()
        Select(page.find("filter-status")).select_by_value("requested")
        page.agreements_ready("status requested")
        assert page.rows() == []
        assert page.find("agreements-empty").is_displayed()


def test_a_wrong_token_shows_the_401_message_and_sign_out_forgets_the_token(
    page: Page,
) -> None:
    with page.on_failure_screenshot("wrong-token"):
        page.type_token("not-a-valid-token")
        message = page.visible("signin-error").text
        assert "SP-601" in message and "401" in message and "not accepted" in message
        assert not page.find("greeting").is_displayed()
        assert not page.find("panel-agreements").is_displayed()
        assert page.driver.execute_script("return sessionStorage.length") == 0

        page.sign_in("supp")
        assert SUPPLIER in page.find("greeting").text
        assert page.find("request-form").is_displayed()
        assert not page.find("tab-audit").is_displayed()
        page.sign_out()
        assert page.driver.execute_script("return sessionStorage.length") == 0
        # A reload after signing out asks for the token again.
        page.open()
        page.visible("token-input")


def test_a_supplier_requests_and_the_operator_must_give_a_reason_to_reject(
    page: Page, admin_api: AdminApi
) -> None:
    with page.on_failure_screenshot("request-reject"):
        page.sign_in("supp")
        page.find("request-authority").send_keys(C)
        page.find("request-service").send_keys("sf2250")
        page.wait(
            lambda _: (
                Select(page.find("request-consumer")).first_selected_option.get_attribute("value")
                == CONSUMER
            ),
            "the consumer systems to load",
        )
        page.find("request-submit").click()
        assert "Requested" in page.visible("notice").text
        page.wait(
            lambda _: any(r.get_attribute("data-authority") == C for r in page.rows()),
            "the requested agreement to be listed",
        )
        uuid = next(
            str(r.get_attribute("data-uuid"))
            for r in page.rows()
            if r.get_attribute("data-authority") == C
        )
        assert page.find_all("action-approve") == [], "a supplier cannot approve"
        page.sign_out()

        page.sign_in("ops")
        page.find("filter-authority").send_keys(C)
        page.find("filter-apply").click()
        page.agreements_ready(f"authority cvr {C}")
        page.find("action-reject", page.row(uuid)).click()
        dialog = page.visible("confirm-dialog")
        page.find("confirm-ok", dialog).click()
        assert "reason is required" in page.visible("confirm-error").text
        page.find("confirm-cancel", dialog).click()
        page.wait(lambda _: not page.find("confirm-dialog").is_displayed(), "the dialog to close")
        assert page.find("status-badge", page.row(uuid)).text == "requested"
    assert admin_api.call("GET", f"/agreements/{uuid}", "ops")["status"] == "requested"


def test_the_operator_sees_the_certificates_with_days_left(page: Page, admin_api: AdminApi) -> None:
    expected = {
        c["alias"]: c for c in admin_api.call("GET", "/certificates", "ops")["certificates"]
    }
    assert "platform-register" in expected
    with page.on_failure_screenshot("certificates"):
        page.sign_in("ops")
        # The tabs work from the keyboard: the arrow key moves to (and opens) the next one.
        page.find("tab-agreements").send_keys(Keys.ARROW_RIGHT)
        page.wait(
            lambda d: (
                d.switch_to.active_element.get_attribute("data-testid") == "tab-certificates"
                and page.find("tab-certificates").get_attribute("aria-selected") == "true"
            ),
            "the Certificates tab to be selected from the keyboard",
        )
        row = page.wait(
            lambda d: d.find_element(
                By.CSS_SELECTOR, 'tr[data-testid="certificate-row"][data-alias="platform-register"]'
            ),
            "the platform-register certificate",
        )
        days = page.find("cert-days", row).text
        assert days == str(expected["platform-register"]["days_to_expiry"])
        assert int(days) > 30
        assert page.find("cert-status", row).text == expected["platform-register"]["status"]
        assert page.find("cert-not-after", row).text.startswith(
            expected["platform-register"]["not_after"][:4]
        )
        # The other sections an operator has: nightly runs (with the outbox) and audit.
        page.find("tab-runs").click()
        page.wait(lambda _: page.find("outbox-pending").text.isdigit(), "the outbox numbers")
        page.find("tab-audit").click()
        page.wait(
            lambda _: page.find("audit-table").get_attribute("data-state") == "ready",
            "the audit records",
        )
