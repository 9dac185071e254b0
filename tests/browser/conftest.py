"""Browser tests: Playwright for Python driving Debian's chromium (installed by `make test`'s
system-packages with apt-get; Playwright never downloads a browser here).

The stack is real: the hub web app, the CRM simulator and the Revenues SOAP simulator on local
sockets, and the ledger on SQLite. What Airflow's DAGs would do next (dispatch, write-back) the
tests call directly, the same hub functions the DAG tasks call.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from crm_adapter.rest import CrmClient
from hub.ledger import db
from hub.web.app import create_app
from simulators.crm.app import create_app as crm_app
from simulators.serving import serve_in_thread
from tests.connectors.revenues.harness import RevenuesSim, running_simulator
from tests.web.support import add_user

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
CRM_TOKEN = "crm-browser-token"
pytestmark = pytest.mark.browser


@pytest.fixture(scope="package")
def chromium():  # type: ignore[no-untyped-def]
    # Package scope, not session: while Playwright's sync API is running it leaves its event loop
    # set as the main thread's running loop, so every later test's asyncio.run() would fail.
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed: `make test` installs it (apt-get install chromium)")
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                             headless=True)
        yield browser
        browser.close()


@dataclass
class Stack:
    hub: str
    ledger: str
    crm_url: str
    revenues: RevenuesSim

    def crm(self) -> CrmClient:
        return CrmClient(self.crm_url, CRM_TOKEN, timeout=10)


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    monkeypatch.setenv("HUB_API_TOKEN", "browser-machine-token")
    monkeypatch.delenv("HUB_WEB_COOKIE_SECURE", raising=False)
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    db.migrate(ledger)
    add_user(ledger, "rev.officer", teams=["revenues"])
    add_user(ledger, "waste.officer", teams=["waste"])
    add_user(ledger, "ops.analyst", role="operations")
    add_user(ledger, "admin", role="admin")
    with running_simulator(tmp_path / "revenues.db") as revenues, \
            serve_in_thread(crm_app(tmp_path / "crm.db", token=CRM_TOKEN)) as crm, \
            serve_in_thread(create_app(url=ledger, secret=lambda: b"s", trigger=None)) as hub:
        yield Stack(hub=hub, ledger=ledger, crm_url=crm, revenues=revenues)
    db.engine(ledger).dispose()


@pytest.fixture
def page(chromium):  # type: ignore[no-untyped-def]
    context = chromium.new_context(viewport={"width": 1366, "height": 900}, locale="en-GB")
    page = context.new_page()
    yield page
    context.close()


def sign_in(page, base: str, username: str, password: str | None = None) -> None:  # type: ignore[no-untyped-def]
    from tests.web.support import PASSWORD

    page.goto(f"{base}/login")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password or PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
