"""The dashboard in headless Chromium against the real app on 127.0.0.1 over a live fleet.

Screenshots go to artifacts/dashboard/. Skips only when Debian's chromium or the
playwright package is not installed (`make setup` installs both).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dashboard.dashkit import DashboardFleet
from tests.helpers.services import CHROMIUM, playwright_sync

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "dashboard"
TIMEOUT_MS = 15_000


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[DashboardFleet]:
    fleet = DashboardFleet(tmp_path)
    fleet.converge()
    yield fleet
    fleet.close()


@pytest.fixture
def browser() -> Iterator[object]:
    with playwright_sync().sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


def _login(page, fleet: DashboardFleet, token: str, target: str = "/ui/") -> None:
    page.goto(fleet.url + target)
    page.get_by_label("API token").fill(token)
    page.keyboard.press("Enter")
    page.wait_for_url(fleet.url + target)


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_overview_vm_conditions_and_a_live_drain(fleet: DashboardFleet, browser) -> None:
    token = fleet.tokens.create("olga", "operator")
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)

    _login(page, fleet, token)
    hosts = page.locator("#hosts tbody tr")
    assert hosts.count() == len(fleet.hosts)
    assert page.locator("#phases").inner_text().count("Running: 6") == 1
    assert page.locator("#not-ready tbody").inner_text().strip() == "Everything is Ready."
    _shot(page, "overview")

    page.get_by_role("link", name="h0000").click()
    page.wait_for_url(f"{fleet.url}/ui/hosts/h0000")
    moving = fleet.vms_on("h0000")
    assert len(moving) == 2
    page.locator("#live-status").filter(has_text="Live").wait_for()
    vm_page = context.new_page()
    vm_page.set_default_timeout(TIMEOUT_MS)
    vm_page.goto(f"{fleet.url}/ui/vms/{moving[0]}")
    ready_row = vm_page.locator("tr.condition", has_text="Ready")
    assert "True" in ready_row.inner_text()
    assert "h0000" in vm_page.locator("#vm-host").inner_text()
    _shot(vm_page, "vm-detail")

    page.get_by_role("button", name="Drain (maintenance)").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"{fleet.url}/ui/hosts/h0000")
    # The form posts and the page comes back at the same URL: wait for the new content.
    page.locator("#maintenance", has_text="on").wait_for()
    assert page.locator("#maintenance").inner_text() == "on"
    assert fleet.store.get("Host", "h0000").obj.spec.maintenance is True
    assert page.locator("#host-vms").inner_text() == "2"
    reloads: list[str] = []
    page.on("framenavigated", lambda frame: reloads.append(frame.url))

    fleet.converge()
    assert fleet.vms_on("h0000") == []
    migrated = [
        a
        for p in fleet.store.list_plans(limit=50)
        for a in p.actions
        if a["type"] == "MigrateVM" and a["target"] in {f"VirtualMachine/{v}" for v in moving}
    ]
    assert len(migrated) >= 2

    page.locator("#host-vms").filter(has_text="0").wait_for()
    assert page.locator("#vm-list").inner_text().strip() == "None."
    assert "DrainRequested" in page.locator("#live").inner_text()
    assert reloads == []
    _shot(page, "host-drained")
    vm_page.locator("#vm-host").filter(has_text=re.compile(r"^(?!h0000$)")).wait_for()
    _shot(vm_page, "vm-migrated")


def test_a_viewer_is_refused_by_the_api(fleet: DashboardFleet, browser) -> None:
    token = fleet.tokens.create("vic", "viewer")
    page = browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    _login(page, fleet, token, "/ui/hosts/h0001")
    assert page.get_by_role("button", name="Drain (maintenance)").count() == 0
    csrf = page.evaluate("document.cookie")
    assert "corral_session" not in csrf
    _shot(page, "viewer-host")
