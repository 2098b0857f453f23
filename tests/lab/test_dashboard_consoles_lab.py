"""The dashboard's web consoles on a real TCG guest, in headless Chromium: an operator types
`echo hi-<n>` into the xterm.js terminal and reads the busybox shell's answer; the noVNC page
gets a one-time ticket and connects to the guest's VNC display through the API and the agent.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.agentpool import AgentPool
from controller.api import TokenStore, create_app
from controller.api.serve import ServerThread, build_server
from controller.lab.guest import GuestImage
from controller.lab.heartbeat import SerialLogReader
from controller.store import Store, open_store
from schemas import Host, VirtualMachine
from tests.helpers.agent_server import serving_agent
from tests.helpers.specs import tiny_domain_spec

pytestmark = pytest.mark.libvirtd

VM = "corral-t-webcon"
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "dashboard"
TIMEOUT_MS = 30_000

playwright_sync = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
if not shutil.which(CHROMIUM):
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[Store, TokenStore, str]]:
    url = f"sqlite:///{tmp_path / 'corral.db'}"
    store = open_store(url)
    tokens = TokenStore.open(url)
    app = create_app(store, tokens)
    app.state.agent_pool = AgentPool()
    server = ServerThread(build_server(app, "127.0.0.1:0", None, insecure_dev=True))
    server.start()
    yield store, tokens, f"http://127.0.0.1:{server.port}"
    server.stop()
    app.state.agent_pool.close()
    tokens.close()
    store.close()


def test_terminal_and_display_in_chromium(
    system_libvirt: str, tiny_guest: GuestImage, api: tuple[Store, TokenStore, str]
) -> None:
    store, tokens, base = api
    operator = tokens.create("otto", "operator")
    spec = tiny_domain_spec(VM, tiny_guest).model_copy(
        update={"labels": {"corral.dev/vm": VM}, "graphics": "vnc"}
    )
    serial = Path(spec.serial_log_path or "")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with serving_agent(system_libvirt) as agent:
        store.put(
            Host.model_validate(
                {"kind": "Host", "metadata": {"name": "h1"}, "spec": {"address": agent.base_url}}
            ),
            "test",
        )
        store.put(
            VirtualMachine.model_validate(
                {"kind": "VirtualMachine", "metadata": {"name": VM},
                 "spec": {"cpus": 1, "memory": "96Mi"}}
            ),
            "test",
        )  # fmt: skip
        try:
            agent.ensure_domain_defined(spec)
            agent.ensure_running(VM)
            store.put_observed("h1", True, agent.get_state().model_dump(mode="json"))
            SerialLogReader({"system": serial}).wait_new(1, timeout_s=90)
            with playwright_sync.sync_playwright() as p:
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
                    rows = page.locator("#terminal .xterm-rows")
                    page.wait_for_function(
                        """word => [...document.querySelectorAll('#terminal .xterm-rows > div')]
                            .some(row => row.textContent.trim() === word)""",
                        arg=word,
                        timeout=TIMEOUT_MS,
                    )
                    assert f"echo {word}" in rows.inner_text()
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
        finally:
            agent.ensure_undefined(VM, force=True)
            serial.unlink(missing_ok=True)
