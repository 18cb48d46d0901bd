"""The admin web page end to end in Debian's headless Chromium (driven by Selenium).

The platform runs in-process with admin principals; agreements are prepared through the JSON
API, then a person's steps are taken in the page: sign in with a token, filter, approve with
a reason in the confirmation dialog, and the next SOAP call for that authority passes. Also:
another authority's administrator does not see the agreement, a wrong token is refused with
the API's 401 message, the operator sees the platform's certificates with days left, and
changes an SF1600 agreement's print route (to sf1601 and back) in its detail view, and every
authority-CVR filter refuses a value that is not 8 digits without loading.

Chromium is not optional: without ``/usr/bin/chromium`` and ``/usr/bin/chromedriver`` the tests
fail (with the install command), in CI and locally. Selenium is told both paths and runs
offline, so Selenium Manager never downloads a browser or a driver.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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

from integrations.oots.exchange import Destination, OotsExchange
from integrations.oots.request_store import RequestStore
from integrations.oots.settings import OOTS_SETTINGS, OotsSettings
from serviceplatform.admin.auth import token_digest
from serviceplatform.config import AdminPrincipal, PeerSettings
from serviceplatform.errors import UpstreamRejected
from serviceplatform.sandbox.nemsms_register import NemSmsRegister
from serviceplatform.sandbox.oots_gateway import SimulatedOotsGateway
from serviceplatform.sandbox.pki import Pki
from serviceplatform.store.audit import AuditEntry, AuditLog
from serviceplatform.store.systems import SystemStore
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
from tests.unit.test_oots_exchange import request as evidence_request

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
    # What print route sf1601 needs configured (the page changes it; nothing calls them).
    for name in ("sts", "sf1601"):
        settings.peers[name] = PeerSettings(base_url=f"https://{name}.invalid")
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
    pytest.fail(
        f"the admin page test needs Debian's headless Chromium; missing {', '.join(missing)}; "
        f"install them as root: {INSTALL} (make test as root does)",
        pytrace=False,
    )


#: The window every test starts with; a test may change it for itself.
WINDOW = (1400, 1000)


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """One headless Chromium for the module: starting one per test cost more than the test."""
    _require_chromium()
    folder = tmp_path_factory.mktemp("chromium")
    with pytest.MonkeyPatch.context() as monkeypatch:
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
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            f"--user-data-dir={folder / 'chromium-profile'}",
        ):
            options.add_argument(argument)
        service = ChromeService(
            executable_path=str(CHROMEDRIVER), log_output=str(folder / "chromedriver.log")
        )
        browser = webdriver.Chrome(options=options, service=service)
    browser.set_page_load_timeout(30)
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture()
def driver(chromium: WebDriver) -> Iterator[WebDriver]:
    """The module's browser as a fresh one: the first window size, no page, no stored state.

    Each test's platform listens on a port of its own, so no page of an earlier test shares
    its origin (storage, cookies); what is left is cleared all the same.
    """
    chromium.set_window_size(*WINDOW)
    try:
        yield chromium
    finally:
        # An error page (its platform is stopped by now) has no storage to clear.
        chromium.execute_script(
            "try { localStorage.clear(); sessionStorage.clear(); } catch (error) {}"
        )
        chromium.delete_all_cookies()
        # Off the page, so that none of its requests reach the next test's platform.
        chromium.get("about:blank")


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

    def system_row(self, uuid: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, f'tr[data-system="{uuid}"]')

    def system_uuids(self) -> list[str]:
        return [str(r.get_attribute("data-system")) for r in self.find_all("system-row")]

    def systems_ready(self) -> None:
        self.wait(
            lambda _: self.find("systems-table").get_attribute("data-state") == "ready",
            "the consumer systems to load",
        )

    def system_detail(self, uuid: str) -> WebElement:
        def shown(_: WebDriver) -> WebElement | Literal[False]:
            detail = self.find("system-detail")
            showing = detail.is_displayed() and detail.get_attribute("data-system") == uuid
            return detail if showing else False

        return self.wait(shown, f"the details of consumer system {uuid}")

    def offered_systems(self) -> list[str]:
        """The consumer systems the agreement request form offers (without the placeholder)."""
        options = Select(self.find("request-consumer")).options
        return [value for o in options if (value := str(o.get_attribute("value")))]

    def notice_says(self, text: str) -> str:
        return self.wait(
            lambda _: (
                (notice := self.find("notice")).is_displayed()
                and text in notice.text
                and notice.text
            ),
            f"a notice saying {text!r}",
        )

    def clipped_buttons(self, testid: str) -> list[str]:
        """The shown buttons inside ``testid`` that are cut off by the window or by a scrolling
        or clipping box around them (a table too wide for its wrapper)."""
        found: list[str] = self.driver.execute_script(
            """
            const width = document.documentElement.clientWidth;
            const clipped = [];
            for (const button of arguments[0].querySelectorAll("button")) {
              const r = button.getBoundingClientRect();
              if (r.width === 0 || r.height === 0) continue;
              const name = `${button.dataset.testid || button.textContent.trim()}`;
              if (r.left < -0.5 || r.right > width + 0.5) clipped.push(`${name} (window)`);
              for (let box = button.parentElement; box; box = box.parentElement) {
                if (getComputedStyle(box).overflowX === "visible") continue;
                const b = box.getBoundingClientRect();
                if (r.left < b.left - 0.5 || r.right > b.right + 0.5) {
                  clipped.push(`${name} (in ${box.className || box.tagName})`);
                }
              }
            }
            if (document.documentElement.scrollWidth > width) clipped.push("the page scrolls");
            return clipped;
            """,
            self.find(testid),
        )
        return found

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

        # It sees the consumer systems, but may change none of them.
        page.find("tab-systems").click()
        page.systems_ready()
        assert page.system_uuids() == [CONSUMER]
        assert not page.find("register-form").is_displayed()
        assert not page.find("goto-register").is_displayed()
        assert page.find_all("system-deactivate") == []
        page.find("system-details", page.system_row(CONSUMER)).click()
        detail = page.system_detail(CONSUMER)
        assert page.find_all("system-cert-row", detail), "the sample system's certificate"
        assert not page.find("rotate-form", detail).is_displayed()


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
        def selected_from_the_keyboard(tab: str) -> None:
            page.wait(
                lambda d: (
                    d.switch_to.active_element.get_attribute("data-testid") == tab
                    and page.find(tab).get_attribute("aria-selected") == "true"
                ),
                f"{tab} to be selected from the keyboard",
            )

        page.find("tab-agreements").send_keys(Keys.ARROW_RIGHT)
        selected_from_the_keyboard("tab-systems")
        page.find("tab-systems").send_keys(Keys.ARROW_RIGHT)
        selected_from_the_keyboard("tab-certificates")
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


def _system_uuids(store: SystemStore) -> set[str]:
    return {view.system.uuid for view in store.find()}


def test_the_operator_registers_rotates_deactivates_and_activates_a_system(
    page: Page, admin_api: AdminApi, platform: RunningPlatform, tmp_path: Path
) -> None:
    store = SystemStore(platform.platform.db)
    before = _system_uuids(store)
    first = make_cert("CN=borger-system,O=Other Supplier,C=DK")
    second = make_cert("CN=borger-system 2027,O=Other Supplier,C=DK")
    expired = make_cert(
        "CN=borger-system 2020,O=Other Supplier,C=DK",
        not_before=datetime.now(UTC) - timedelta(days=30),
        days=10,
    )
    second_file = tmp_path / "borger-system-2027.crt"
    second_file.write_bytes(second.pem)
    # The width of a common laptop screen: the panel's buttons must all be reachable.
    page.driver.set_window_size(1280, 900)

    with page.on_failure_screenshot("systems-operator"):
        page.sign_in("ops")
        assert page.driver.execute_script("return window.innerWidth") <= 1280
        page.find("tab-systems").click()
        page.systems_ready()
        assert page.system_uuids() == [CONSUMER]
        assert page.find("system-supplier", page.system_row(CONSUMER)).text == SUPPLIER_CVR

        # The operator names the supplier. An expired certificate is refused by the platform,
        # and the page shows its code and text.
        assert page.find("register-supplier").is_displayed()
        page.find("register-name").send_keys("Borger case system")
        page.find("register-supplier").send_keys(OTHER_SUPPLIER_CVR)
        page.find("register-pem").send_keys(expired.pem.decode())
        page.find("register-submit").click()
        page.visible("register-error")
        assert page.find("register-error-code").text == "SP-608"
        assert "expired" in page.find("register-error").text
        assert _system_uuids(store) == before

        page.find("register-pem").clear()
        page.find("register-pem").send_keys(first.pem.decode())
        page.find("register-reason").send_keys("Onboarding Borger")
        page.find("register-submit").click()
        assert "Registered" in page.notice_says("Borger case system")
        (uuid,) = _system_uuids(store) - before
        registered = store.get(uuid)
        assert (registered.system.name, registered.system.supplier_cvr) == (
            "Borger case system",
            OTHER_SUPPLIER_CVR,
        )
        assert [c.fingerprint for c in registered.certificates] == [first.fingerprint]
        assert store.history(uuid)[-1].reason == "Onboarding Borger"

        page.wait(lambda _: uuid in page.system_uuids(), "the new system to be listed")
        row = page.system_row(uuid)
        assert page.find("system-name", row).text == "Borger case system"
        assert page.find("system-supplier", row).text == OTHER_SUPPLIER_CVR
        assert page.find("system-state", row).text == "active"
        assert page.find("system-certs", row).text == "1 / 1"
        assert page.find("system-callable", row).text == "callable"
        # The new system is shown in detail at once, with its certificate.
        detail = page.system_detail(uuid)
        (certificate,) = page.find_all("system-cert-row", detail)
        assert certificate.get_attribute("data-fingerprint") == first.fingerprint
        assert page.find("cert-fingerprint", certificate).text == first.fingerprint
        assert (
            page.find("cert-subject", certificate).text == "CN=borger-system,O=Other Supplier,C=DK"
        )
        assert "CN=Test CA" in page.find("cert-issuer", certificate).text
        assert page.find("cert-accepted-now", certificate).text == "accepted"

        # The agreement request form offers the new (active) system.
        page.find("tab-agreements").click()
        page.wait(lambda _: uuid in page.offered_systems(), "the new system to be offered")
        page.find("tab-systems").click()
        page.systems_ready()
        detail = page.system_detail(uuid)

        # A certificate that is registered already is refused (SP-607).
        page.find("rotate-pem", detail).send_keys(first.pem.decode())
        page.find("rotate-submit", detail).click()
        page.visible("rotate-error")
        assert page.find("rotate-error-code").text == "SP-607"

        # Rotation: the new certificate from a file, the old one accepted 7 more days.
        page.find("rotate-pem").clear()
        page.find("rotate-file").send_keys(str(second_file))
        page.wait(
            lambda _: page.find("rotate-pem").get_attribute("value") == second.pem.decode().strip(),
            "the chosen file to be read into the form",
        )
        assert page.find("rotate-overlap").get_attribute("value") == "14"
        page.find("rotate-overlap").clear()
        page.find("rotate-overlap").send_keys("7")
        page.find("rotate-reason").send_keys("Yearly renewal")
        page.find("rotate-submit").click()
        assert "accepted until" in page.notice_says("Certificate added")
        page.wait(
            lambda _: len(page.find_all("system-cert-row", page.find("system-detail"))) == 2,
            "both certificates in the details",
        )
        rotated = store.get(uuid)
        by_fingerprint = {c.fingerprint: c for c in rotated.certificates}
        old, new = by_fingerprint[first.fingerprint], by_fingerprint[second.fingerprint]
        assert new.accepted_until is None
        assert old.accepted_until is not None
        assert old.accepted_until - new.accepted_from == timedelta(days=7)
        rows = page.find_all("system-cert-row", page.find("system-detail"))
        assert [r.get_attribute("data-fingerprint") for r in rows] == [
            second.fingerprint,
            first.fingerprint,
        ]
        assert page.find("cert-accepted-until", rows[0]).text == "no end"
        until = page.find("cert-accepted-until", rows[1]).find_element(By.TAG_NAME, "time")
        api_view = admin_api.call("GET", f"/consumer-systems/{uuid}", "ops")
        api_old = next(
            c for c in api_view["certificates"] if c["fingerprint_sha256"] == first.fingerprint
        )
        assert until.get_attribute("datetime") == api_old["accepted_until"]
        assert [r.text for r in page.find_all("cert-accepted-now", page.find("system-detail"))] == [
            "accepted",
            "accepted",
        ]
        assert page.find("system-certs", page.system_row(uuid)).text == "2 / 2"
        clipped = page.clipped_buttons("panel-systems")
        assert clipped == [], f"cut off at 1280 px: {clipped}"

        # Deactivation needs a reason.
        page.find("system-deactivate", page.find("system-actions")).click()
        dialog = page.visible("confirm-dialog")
        assert "Borger case system" in page.find("confirm-text", dialog).text
        page.find("confirm-ok", dialog).click()
        assert "reason is required" in page.visible("confirm-error").text
        assert store.get(uuid).system.active
        page.find("confirm-reason", dialog).send_keys("Supplier contract ended")
        page.find("confirm-ok", dialog).click()
        page.wait(
            lambda _: page.find("system-detail-state").text == "deactivated",
            "the details to show deactivated",
        )
        assert "Deactivated" in page.notice_says("not callable")
        row = page.system_row(uuid)
        assert page.find("system-state", row).text == "deactivated"
        assert page.find("system-callable", row).text == "not callable"
        assert page.find_all("system-deactivate", row) == []
        assert page.find("system-activate", row).is_displayed()
        history = page.find_all("system-history-row", page.find("system-detail"))
        assert [h.get_attribute("data-action") for h in history] == [
            "register",
            "rotate",
            "deactivate",
        ]
        assert page.find("system-history-reason", history[-1]).text == "Supplier contract ended"
        deactivated = store.get(uuid).system
        assert not deactivated.active and deactivated.deactivated_at is not None
        assert page.clipped_buttons("panel-systems") == []

        # A deactivated system is not offered for agreements any more.
        page.find("tab-agreements").click()
        page.wait(
            lambda _: CONSUMER in page.offered_systems() and uuid not in page.offered_systems(),
            "the deactivated system to be gone from the request form",
        )
        page.find("tab-systems").click()
        page.systems_ready()

        # Activation: the reason is optional.
        page.find("system-activate", page.system_row(uuid)).click()
        dialog = page.visible("confirm-dialog")
        assert page.find("confirm-ok", dialog).text == "Activate"
        page.find("confirm-ok", dialog).click()
        page.wait(
            lambda _: page.find("system-state", page.system_row(uuid)).text == "active",
            "the row to show active",
        )
        assert "Activated" in page.notice_says("callable")
        assert page.find("system-callable", page.system_row(uuid)).text == "callable"
        assert page.find("system-detail-state").text == "active"

    assert store.get(uuid).system.active
    events = store.history(uuid)
    assert [(e.action, e.reason) for e in events] == [
        ("register", "Onboarding Borger"),
        ("rotate", "Yearly renewal"),
        ("deactivate", "Supplier contract ended"),
        ("activate", None),
    ]
    assert all("ops" in e.actor for e in events)
    # Every change made in the page left an admin audit record.
    records = admin_api.call("GET", "/audit?limit=200", "ops")["records"]
    done = {r["operation"] for r in records if uuid in (r["detail"] or "") and r["outcome"] == "ok"}
    assert {"register", "add-certificate", "deactivate", "activate"} <= done


def test_a_supplier_sees_only_its_own_systems_and_registers_for_itself(
    page: Page, admin_api: AdminApi, platform: RunningPlatform
) -> None:
    def register(name: str, supplier_cvr: str) -> str:
        body = {
            "name": name,
            "supplier_cvr": supplier_cvr,
            "certificate_pem": make_cert(f"CN={name},C=DK").pem.decode(),
        }
        return str(admin_api.call("POST", "/consumer-systems", "ops", json=body)["uuid"])

    others = register("Other supplier's system", OTHER_SUPPLIER_CVR)
    retired = register("Retired own system", SUPPLIER_CVR)
    admin_api.call(
        "POST", f"/consumer-systems/{retired}/deactivate", "ops", json={"reason": "retired"}
    )
    store = SystemStore(platform.platform.db)
    before = _system_uuids(store)
    new_cert = make_cert("CN=supplier case system,O=Sandbox Supplier,C=DK")

    with page.on_failure_screenshot("systems-supplier"):
        page.sign_in("supp")
        page.find("tab-systems").click()
        page.systems_ready()
        assert sorted(page.system_uuids()) == sorted([CONSUMER, retired])
        assert others not in page.system_uuids()
        assert {r.text for r in page.find_all("system-supplier")} == {SUPPLIER_CVR}
        # It may deactivate and activate its own systems.
        assert page.find("system-activate", page.system_row(retired)).is_displayed()
        assert page.find("system-deactivate", page.system_row(CONSUMER)).is_displayed()

        # It registers for itself: no supplier CVR field.
        assert page.find("register-form").is_displayed()
        assert not page.find("register-supplier-field").is_displayed()
        assert SUPPLIER_CVR in page.find("register-for").text
        page.find("register-name").send_keys("Supplier case system")
        page.find("register-pem").send_keys(new_cert.pem.decode())
        page.find("register-submit").click()
        page.notice_says("Registered")
        (uuid,) = _system_uuids(store) - before
        assert store.get(uuid).system.supplier_cvr == SUPPLIER_CVR
        page.wait(lambda _: uuid in page.system_uuids(), "its new system to be listed")
        assert others not in page.system_uuids()
        assert page.find("system-supplier", page.system_row(uuid)).text == SUPPLIER_CVR
        assert page.find("rotate-form", page.system_detail(uuid)).is_displayed()

        # The request form offers its active systems only: not the retired one, not others'.
        page.find("tab-agreements").click()
        page.wait(lambda _: uuid in page.offered_systems(), "its new system to be offered")
        assert sorted(page.offered_systems()) == sorted([CONSUMER, uuid])


# --- the message log, usage and both window sizes -------------------------------------------------

#: The sample authority the failed OOTS request is made for.
A = "29189846"
OOTS_USER, OOTS_PASSWORD = "oots-platform", "s3cret-oots"


@pytest.fixture()
def gateway(pki: Pki) -> Iterator[SimulatedOotsGateway]:
    with SimulatedOotsGateway(
        username=OOTS_USER, password=OOTS_PASSWORD, response_delay=0.05, tls_dir=pki.directory
    ) as running:
        yield running


@pytest.fixture()
def oots_platform(
    tmp_path: Path, pki: Pki, register: NemSmsRegister, gateway: SimulatedOotsGateway
) -> Iterator[RunningPlatform]:
    """The platform with admin principals, its OOTS access point the simulated gateway."""
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
    settings.sections[OOTS_SETTINGS.name] = OotsSettings(
        domibus_url=gateway.base_url,
        domibus_username=OOTS_USER,
        domibus_password=OOTS_PASSWORD,
        party_id="AP_DK_01",
        common_services_url=gateway.common_services_url,
        # No background polling: the injected refusal must meet the submit, not a poll.
        poll_interval_seconds=3600,
    )
    running = start_platform(settings)
    yield running
    running.stop()


def gateway_hook(gateway: SimulatedOotsGateway, method: str, path: str, **kwargs: Any) -> Any:
    session = requests.Session()
    session.trust_env = False
    answer = session.request(method, f"{gateway.control_url}/{path}", timeout=5, **kwargs)
    assert answer.status_code == 200, answer.text
    return answer.json()


def failed_oots_request(platform: RunningPlatform, gateway: SimulatedOotsGateway) -> str:
    """An evidence request the gateway refused (HTTP 400 to its submit): ``failed``."""
    p = platform.platform
    exchange = OotsExchange.from_settings(p.db, p.audit, p.settings, p.clock)
    gateway_hook(gateway, "POST", "faults", json={"status": 400, "count": 1})
    edm = evidence_request()
    try:
        with pytest.raises(UpstreamRejected):
            exchange.submit_first(
                edm,
                Destination("AP_FI_01", "FI-DVV-HELSINKI", "urn:cef.eu:names:identifier:EAS:0212"),
                authority_cvr=A,
                consumer_system=None,
            )
    finally:
        exchange.close()
    record = RequestStore(p.db).get(str(edm.request_id))
    assert record is not None and record.state == "failed"
    return record.request_id


def test_the_operator_finds_a_failed_oots_request_in_the_log_and_resends_it(
    driver: WebDriver,
    oots_platform: RunningPlatform,
    gateway: SimulatedOotsGateway,
    tmp_path: Path,
) -> None:
    request_id = failed_oots_request(oots_platform, gateway)
    ref = f"oots:{request_id}"
    page = Page(driver, oots_platform.base_url, tmp_path)
    page.open()
    with page.on_failure_screenshot("message-log-resend"):
        page.sign_in("ops")
        page.find("tab-messages").click()
        Select(page.find("msg-outcome")).select_by_value("fault")
        Select(page.find("msg-source")).select_by_value("oots")
        page.find("msg-search").click()
        # The filtered page (the tab's first, unfiltered one may still be on its way).
        page.wait(
            lambda _: (
                page.find("messages-table").get_attribute("data-state") == "ready"
                and "filtered" in page.find("messages-caption").text
            ),
            "the filtered message log",
        )
        row = page.driver.find_element(By.CSS_SELECTOR, f'tr[data-ref="{ref}"]')
        assert [r.get_attribute("data-ref") for r in page.find_all("message-row")] == [ref]
        assert "SP-405" in row.text and A in row.text
        page.find("message-details", row).click()
        detail = page.visible("message-detail")
        page.wait(lambda _: detail.get_attribute("data-ref") == ref, "the request's details")
        sections = {
            s.get_attribute("data-title"): s for s in page.find_all("message-section", detail)
        }
        assert set(sections) >= {"OOTS request", "Conversation messages", "Audit records"}
        conversation = page.find_all("section-row", sections["Conversation messages"])
        assert len(conversation) == 1 and "ExecuteQueryRequest" in conversation[0].text
        page.find("message-resend", detail).click()
        dialog = page.visible("confirm-dialog")
        assert request_id in page.find("confirm-text", dialog).text
        page.find("confirm-ok", dialog).click()
        assert "Resent" in page.notice_says("Resent")
        page.wait(
            lambda _: page.find("message-detail-outcome").text == "pending",
            "the request to be under way again",
        )
    # Sent again under a new MessageId and taken by the gateway this time.
    record = RequestStore(oots_platform.platform.db).get(request_id)
    assert record is not None and record.first_message_id != record.message_id
    assert (record.state, record.error_code) == ("submitted", None)
    submitted = gateway_hook(gateway, "GET", "submitted")
    assert record.message_id in json.dumps(submitted)
    audit = AuditLog(oots_platform.platform.db).tail(20)
    assert any(e.operation == "resend" and e.outcome == "ok" and ref in (e.detail or "")
               for e in audit)  # fmt: skip


def test_the_usage_table_and_chart(
    page: Page, platform: RunningPlatform, admin_api: AdminApi
) -> None:
    for n in range(5):
        platform.platform.audit.write(
            AuditEntry(
                at=datetime.now(UTC),
                service="sf2250",
                operation="opdater",
                outcome="fault" if n == 0 else "ok",
                latency_ms=10.0 + n,
                authority_cvr=B,
            )
        )
    with page.on_failure_screenshot("usage"):
        page.sign_in("ops")
        page.find("tab-usage").click()
        page.wait(
            lambda _: page.find("usage-table").get_attribute("data-state") == "ready",
            "the usage table",
        )
        rows = [r for r in page.find_all("usage-row") if r.get_attribute("data-authority") == B]
        assert rows and rows[0].text.split()[3:6] == ["5", "1", "20.0"]
        bars = page.find_all("usage-bar")
        assert len(bars) == 30 and int(str(bars[-1].get_attribute("data-calls"))) >= 5
        assert bars[-1].size["height"] > 0
        # An authority administrator sees its own authority only.
        page.sign_out()
        page.sign_in("adm-c")
        page.find("tab-usage").click()
        page.wait(
            lambda _: page.find("usage-table").get_attribute("data-state") == "ready",
            "the usage table",
        )
        assert {r.get_attribute("data-authority") for r in page.find_all("usage-row")} <= {C}


PANELS = ("agreements", "systems", "certificates", "runs", "messages", "usage", "audit")


@pytest.mark.parametrize("size", [(1280, 800), (1920, 1080)], ids=["1280x800", "1920x1080"])
def test_every_action_button_is_visible_at_both_window_sizes(
    page: Page, admin_api: AdminApi, platform: RunningPlatform, size: tuple[int, int]
) -> None:
    # Rows with every kind of action: requested (approve, reject), approved (suspend,
    # revoke), an undelivered nightly delivery to resend.
    admin_api.request_for_c()
    with platform.platform.db.transaction(write_first=True) as connection:
        add_outbox_row(
            connection,
            authority_cvr=B,
            message_id="6f1c0f4e-0000-4000-8000-00000000beef",
            attempts=1,
            last_error="SP-430 the distributor is unavailable",
        )
    page.driver.set_window_size(*size)
    with page.on_failure_screenshot(f"layout-{size[0]}x{size[1]}"):
        page.sign_in("ops")
        assert page.clipped_buttons("tabs") == []
        actions = {
            b.get_attribute("data-testid") for b in page.find_all("agreements-table")[0]
            .find_elements(By.TAG_NAME, "button")
        }  # fmt: skip
        assert {"action-approve", "action-reject", "action-suspend", "action-revoke"} <= actions
        for panel in PANELS:
            page.find(f"tab-{panel}").click()
            page.wait(
                lambda _, p=panel: (  # type: ignore[misc]
                    page.find(f"panel-{p}").is_displayed()
                    and "loading"
                    not in {
                        t.get_attribute("data-state")
                        for t in page.find(f"panel-{p}").find_elements(By.TAG_NAME, "table")
                    }
                ),
                f"the {panel} section",
            )
            if panel == "messages":
                row = page.wait(
                    lambda d: d.find_element(By.CSS_SELECTOR, 'tr[data-ref^="outbox:"]'),
                    "the undelivered nightly delivery",
                )
                page.find("message-details", row).click()
                page.visible("message-resend")
            assert page.clipped_buttons(f"panel-{panel}") == [], panel
            for button in page.find(f"panel-{panel}").find_elements(By.TAG_NAME, "button"):
                if button.is_displayed():
                    # Reachable: scrolled to, it lies inside the window.
                    inside = page.driver.execute_script(
                        "arguments[0].scrollIntoView({block: 'center'});"
                        "const r = arguments[0].getBoundingClientRect();"
                        "return r.left >= 0 && r.right <= window.innerWidth"
                        " && r.top >= 0 && r.bottom <= window.innerHeight;",
                        button,
                    )
                    assert inside, (panel, button.text)
        # The confirmation dialog's buttons too.
        page.find("tab-agreements").click()
        page.agreements_ready()
        page.find_all("action-reject")[0].click()
        page.visible("confirm-dialog")
        assert page.clipped_buttons("confirm-dialog") == []
        page.find("confirm-cancel").click()


#: Authority B's SF1600 Print agreement (routing_tables/agreements.toml): it has a print route.
PRINT_AGREEMENT = "b7e2d9a4-5c3f-4f1a-8e6d-2a9c4b7e1f02"


def test_the_operator_sees_and_changes_the_print_route_in_the_detail_view(
    page: Page, admin_api: AdminApi
) -> None:
    path = f"/agreements/{PRINT_AGREEMENT}/print-route"
    page.driver.set_window_size(1280, 800)

    def shown_route(route: str) -> str:
        return page.wait(
            lambda _: (
                (current := page.find("print-route-current")).get_attribute("data-route") == route
                and current.text
            ),
            f"the detail view to show the print route {route}",
        )

    def change_to(route: str, reason: str) -> None:
        Select(page.find("print-route-select")).select_by_value(route)
        page.find("print-route-reason").send_keys(reason)
        page.find("print-route-submit").click()
        page.notice_says(f"now goes out via {route}")
        shown_route(route)

    with page.on_failure_screenshot("print-route"):
        # An authority administrator sees its agreement's route but cannot change it.
        page.sign_in("adm-b")
        page.find("action-details", page.row(PRINT_AGREEMENT)).click()
        page.visible("print-route")
        assert "sf1600" in shown_route("sf1600") and "the default" in shown_route("sf1600")
        assert not page.find("print-route-form").is_displayed()
        page.sign_out()

        page.sign_in("ops")
        page.find("action-details", page.row(PRINT_AGREEMENT)).click()
        page.visible("print-route-form")
        assert "credential: certificate" in shown_route("sf1600")
        assert page.clipped_buttons("agreement-detail") == []

        change_to("sf1601", "moving B to Afsend post")
        assert "credential: token" in shown_route("sf1601")
        assert "chosen by an operator" in shown_route("sf1601")
        assert admin_api.call("GET", path, "ops") == {
            "agreement": PRINT_AGREEMENT,
            "print_route": "sf1601",
            "credential": "token",
            "chosen": True,
        }
        # The history in the page names the change and its reason.
        page.wait(
            lambda _: any(
                "print_route" in r.text and "moving B to Afsend post" in r.text
                for r in page.find_all("history-row")
            ),
            "the history to show the print-route change",
        )

        change_to("sf1600", "back to the register")
        assert "credential: certificate" in shown_route("sf1600")

    answer = admin_api.call("GET", path, "ops")
    assert (answer["print_route"], answer["credential"], answer["chosen"]) == (
        "sf1600",
        "certificate",
        True,
    )
    history = admin_api.call("GET", f"/agreements/{PRINT_AGREEMENT}", "ops")["history"]
    changes = [(h["reason"], h["actor"]) for h in history if h["action"] == "print_route"]
    assert [reason for reason, _ in changes] == ["moving B to Afsend post", "back to the register"]
    assert all("ops" in actor for _, actor in changes)
    records = admin_api.call("GET", "/audit?limit=50", "ops")["records"]
    audited = [
        r["detail"]
        for r in records
        if r["service"] == "admin" and (r["operation"], r["outcome"]) == ("print-route", "ok")
    ]
    assert len(audited) == 2 and all("ops" in detail for detail in audited)


#: Each authority-CVR filter: its tab, its field and the button that loads with it.
CVR_FILTERS = (
    ("tab-agreements", "filter-authority", "filter-apply"),
    ("tab-messages", "msg-authority", "msg-search"),
    ("tab-usage", "usage-authority", "usage-reload"),
    ("tab-audit", "audit-authority", "audit-apply"),
)


@pytest.mark.parametrize(("tab", "field", "button"), CVR_FILTERS, ids=[f[1] for f in CVR_FILTERS])
def test_an_authority_filter_that_is_not_8_digits_is_marked_and_not_loaded(
    page: Page, tab: str, field: str, button: str
) -> None:
    with page.on_failure_screenshot(field):
        page.sign_in("ops")
        page.find(tab).click()
        page.find(field).send_keys("1234")
        page.find(button).click()
        assert "the authority CVR is 8 digits" in page.visible("error").text
        page.wait(
            lambda _: page.find(field).get_attribute("aria-invalid") == "true",
            f"{field} to be marked invalid",
        )
        page.find(field).clear()
        page.find(field).send_keys(B)
        page.find(button).click()
        page.wait(
            lambda _: page.find(field).get_attribute("aria-invalid") is None,
            f"{field} to be valid again",
        )
