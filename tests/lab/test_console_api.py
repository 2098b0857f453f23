"""`corral console VM` and the API's console route on a real TCG guest: an operator types
into the guest's shell through the controller and the agent; a viewer, a token scoped
elsewhere and a VM that is not running are refused; every session is an event."""

from __future__ import annotations

import json
import os
import pty
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from controller.lab.guest import GuestImage
from controller.lab.heartbeat import SerialLogReader
from controller.store import Store
from tests.helpers.agent_server import serving_agent
from tests.helpers.console_lab import ServedApi, guest_on_agent, observe, serving_api
from tests.helpers.specs import tiny_domain_spec

pytestmark = pytest.mark.libvirtd

VM = "corral-t-apicon"
REPO_ROOT = Path(__file__).resolve().parents[2]


def read_until(fd: int, needle: bytes, timeout_s: float) -> bytes:
    """Returns what `fd` yields until `needle` appears (AssertionError on timeout)."""
    seen = b""
    deadline = time.monotonic() + timeout_s
    os.set_blocking(fd, False)
    while needle not in seen:
        assert time.monotonic() < deadline, f"{needle!r} not seen; got {seen[-400:]!r}"
        try:
            seen += os.read(fd, 4096)
        except BlockingIOError:
            time.sleep(0.05)
        except OSError:  # the pty closed
            break
    return seen


def event_counts(store: Store) -> dict[str, int]:
    """Returns how many events of each reason the VM has (repeats counted)."""
    counts: dict[str, int] = {}
    for event in store.list_events("VirtualMachine", VM, limit=50):
        counts[event.reason] = counts.get(event.reason, 0) + event.count
    return counts


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ServedApi]:
    with serving_api(tmp_path) as served:
        yield served


def test_console_through_the_api_and_the_cli(
    system_libvirt: str, tiny_guest: GuestImage, api: ServedApi
) -> None:
    store, tokens, base = api.store, api.tokens, api.base_url
    operator = tokens.create("otto", "operator")
    viewer = tokens.create("vera", "viewer")
    elsewhere = tokens.create("tess", "operator", scope="team=a")
    spec = tiny_domain_spec(VM, tiny_guest).model_copy(update={"labels": {"corral.dev/vm": VM}})
    ws_url = base.replace("http://", "ws://") + f"/api/v1/virtualmachines/{VM}/console"
    with (
        serving_agent(system_libvirt) as agent,
        guest_on_agent(store, agent, spec, "api:test") as serial,
    ):
        observe(store, agent)
        with pytest.raises(InvalidStatus) as stopped:
            connect(ws_url, additional_headers={"Authorization": f"Bearer {operator}"})
        assert stopped.value.response.status_code == 404
        assert b"is not running on any reachable host (shutoff on h1)" in (
            stopped.value.response.body or b""
        )

        agent.ensure_running(VM)
        observe(store, agent)
        SerialLogReader({"system": serial}).wait_new(1, timeout_s=90)

        for token, status in ((viewer, 403), (elsewhere, 404), ("made-up", 403)):
            with pytest.raises(InvalidStatus) as refused:
                connect(ws_url, additional_headers={"Authorization": f"Bearer {token}"})
            assert refused.value.response.status_code == status

        with connect(ws_url, additional_headers={"Authorization": f"Bearer {operator}"}) as ws:
            assert json.loads(ws.recv(timeout=30))["type"] == "attached"
            token = f"hello-{random.randrange(10**6, 10**7)}"
            ws.send(f"echo {token}\r".encode())
            seen = b""
            deadline = time.monotonic() + 30
            while f"\n{token}\r\n".encode() not in seen and time.monotonic() < deadline:
                frame = ws.recv(timeout=30)
                seen += frame if isinstance(frame, bytes) else b""
            assert f"\n{token}\r\n".encode() in seen

        # `corral console` on a terminal: raw mode, type a command, Ctrl-] detaches.
        master, slave = pty.openpty()
        cli = subprocess.Popen(
            [sys.executable, "-m", "controller.cli.main", "console", VM,
             "--api", base, "--token", operator],
            stdin=slave, stdout=slave, stderr=slave, cwd=REPO_ROOT, close_fds=True,
        )  # fmt: skip
        os.close(slave)
        try:
            read_until(master, b"escape character is ^]", timeout_s=60)
            word = f"cli-{random.randrange(10**6, 10**7)}"
            os.write(master, f"echo {word}\r".encode())
            read_until(master, f"\n{word}\r\n".encode(), timeout_s=30)
            os.write(master, b"\x1d")
            assert cli.wait(timeout=30) == 0
            assert b"detached" in read_until(master, b"detached", timeout_s=10)
        finally:
            if cli.poll() is None:
                cli.kill()
            os.close(master)

        # The API records the end of a session once it notices the client has gone.
        expected = {"ConsoleRefused": 4, "ConsoleOpened": 2, "ConsoleClosed": 2}
        deadline = time.monotonic() + 10
        while (counts := event_counts(store)) != expected and time.monotonic() < deadline:
            time.sleep(0.1)
        assert counts == expected
