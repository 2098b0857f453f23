"""The dashboard's web consoles on a real TCG guest, in headless Chromium: an operator types
`echo hi-<n>` into the xterm.js terminal and reads the busybox shell's answer; the noVNC page
gets a one-time ticket and connects to the guest's VNC display through the API and the agent.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.lab.guest import GuestImage
from controller.lab.heartbeat import SerialLogReader
from tests.helpers.agent_server import serving_agent
from tests.helpers.console_lab import ServedApi, guest_on_agent, observe, serving_api
from tests.helpers.services import CHROMIUM, playwright_sync
from tests.helpers.specs import tiny_domain_spec

pytestmark = pytest.mark.libvirtd

VM = "corral-t-webcon"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "dashboard"
TIMEOUT_MS = 30_000


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ServedApi]:
    with serving_api(tmp_path) as served:
        yield served


def test_terminal_and_display_in_chromium(
    system_libvirt: str, tiny_guest: GuestImage, api: ServedApi
) -> None:
    store, base = api.store, api.base_url
    operator = api.tokens.create("otto", "operator")
    spec = tiny_domain_spec(VM, tiny_guest).model_copy(
        update={"labels": {"corral.dev/vm": VM}, "graphics": "vnc"}
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with (
        serving_agent(system_libvirt) as agent,
        guest_on_agent(store, agent, spec, "test") as serial,
    ):
        agent.ensure_running(VM)
        observe(store, agent)
        SerialLogReader({"system": serial}).wait_new(1, timeout_s=90)
        with playwright_sync().sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
            )
            try:
                page = browser.new_page()
                page.goto(f"{base}/ui/vms/{VM}/console")
                page.get_by_label("API token").fill(operator)
                page.keyboard.press("Enter")
                page.wait_for_url(f"{base}/ui/vms/{VM}/console")
                status = page.locator("#console-status")
                status.filter(has_text="Attached").wait_for(timeout=TIMEOUT_MS)
                page.locator("#terminal .xterm-screen").click()
                word = f"hi-{random.randrange(10**6, 10**7)}"
                page.keyboard.press("Enter")
                page.keyboard.type(f"echo {word}")
                page.keyboard.press("Enter")
                # The shell's answer is a row of its own; the echo of the typed line is not
                # compared, since the guest's serial heartbeat may land in the middle of it.
                page.wait_for_function(
                    """word => [...document.querySelectorAll('#terminal .xterm-rows > div')]
                        .some(row => row.textContent.trim() === word)""",
                    arg=word,
                    timeout=TIMEOUT_MS,
                )
                page.screenshot(path=str(ARTIFACTS / "console.png"))

                page.goto(f"{base}/ui/vms/{VM}/display")
                display = page.locator("#display-status")
                display.filter(has_text="Connected").wait_for(timeout=TIMEOUT_MS)
                page.locator("#screen canvas").wait_for(timeout=TIMEOUT_MS)
                page.screenshot(path=str(ARTIFACTS / "display.png"))
            finally:
                browser.close()
        reasons = {e.reason for e in store.list_events("VirtualMachine", VM, limit=50)}
        assert {"ConsoleOpened", "GraphicsTicketIssued"} <= reasons
