"""A real TCG guest's serial console through the agent's websocket: type into the busybox
shell, read the answer; the serial log still gets every line; one session at a time."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from agentapi import VERBS
from controller.agentverbs import call
from controller.lab.guest import GuestImage
from controller.lab.heartbeat import SerialLogReader
from tests.helpers.agent_server import serving_agent
from tests.helpers.specs import tiny_domain_spec

pytestmark = pytest.mark.libvirtd

NAME = "corral-t-console"


def read_until(ws: ClientConnection, needle: bytes, timeout_s: float) -> bytes:
    """Returns the console bytes received until `needle` appeared (AssertionError on timeout)."""
    seen = b""
    deadline = time.monotonic() + timeout_s
    while needle not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"{needle!r} not seen within {timeout_s} s; got {seen[-400:]!r}"
        try:
            frame = ws.recv(timeout=left)
        except TimeoutError:
            continue
        if isinstance(frame, bytes):
            seen += frame
    return seen


def control(ws: ClientConnection, timeout_s: float = 30) -> dict:
    """Returns the next text (control) frame, skipping console bytes."""
    deadline = time.monotonic() + timeout_s
    while True:
        frame = ws.recv(timeout=max(0.1, deadline - time.monotonic()))
        if isinstance(frame, str):
            return json.loads(frame)


def test_type_a_command_into_the_guest_shell(system_libvirt: str, tiny_guest: GuestImage) -> None:
    spec = tiny_domain_spec(NAME, tiny_guest)
    serial = Path(spec.serial_log_path or "")
    serial.unlink(missing_ok=True)
    with serving_agent(system_libvirt) as agent:
        url = agent.websocket_address(call(VERBS.open_console, name=NAME))
        try:
            agent.ensure_domain_defined(spec)
            agent.ensure_running(NAME)
            seq = agent.get_state().events_seq
            SerialLogReader({"system": serial}).wait_new(1, timeout_s=90)

            with connect(url, open_timeout=30) as ws:
                assert control(ws) == {
                    "type": "attached", "domain": NAME, "message": "serial console",
                    "error": None, "bytes_in": 0, "bytes_out": 0,
                }  # fmt: skip
                token = f"hello-{random.randrange(10**6, 10**7)}"
                started = time.monotonic()
                ws.send(f"echo {token}\r".encode())
                # The shell echoes the typed line, and then the command's output: the token
                # alone on a line, which only running the command prints. (The echoed line
                # itself may be cut by a late kernel message, so it is not compared.)
                out = read_until(ws, f"\n{token}\r\n".encode(), timeout_s=30)
                print(f"console round trip: {time.monotonic() - started:.2f} s")
                assert out.count(token.encode()) >= 2  # typed, then printed

                # A second session is refused while the first is open, unless forced.
                with connect(url, open_timeout=30) as second:
                    refused = control(second)
                    assert (refused["type"], refused["error"]["type"]) == ("error", "conflict")
                    with pytest.raises(ConnectionClosed) as closed:
                        second.recv(timeout=10)
                    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4409

                with connect(url + "?force=true", open_timeout=30) as taker:
                    assert control(taker)["type"] == "attached"
                    ended = control(ws)
                    assert ended["type"] == "closed" and ended["bytes_in"] == len(token) + 6
                    taker.send(b"echo second-$((6*7))\r")
                    read_until(taker, b"second-42", timeout_s=30)

            # Heartbeats still reach the log file while the console is attachable.
            log = serial.read_text(errors="replace")
            assert "GUEST-UP" in log and token in log
            events = [e for e in agent.events(since=seq, wait_s=0.5) if e.kind == "console"]
            assert [e.event for e in events] == [
                "console_opened", "console_refused", "console_closed", "console_opened",
                "console_closed",
            ]  # fmt: skip
        finally:
            agent.ensure_undefined(NAME, force=True)
            serial.unlink(missing_ok=True)


def test_console_of_a_missing_or_stopped_domain_is_refused(
    system_libvirt: str, tiny_guest: GuestImage
) -> None:
    spec = tiny_domain_spec(NAME + "-off", tiny_guest)
    with serving_agent(system_libvirt) as agent:
        try:
            with connect(
                agent.websocket_address(call(VERBS.open_console, name="no-such-vm"))
            ) as ws:
                message = control(ws)
                assert (message["type"], message["error"]["type"]) == ("error", "not_found")
            agent.ensure_domain_defined(spec)
            with connect(agent.websocket_address(call(VERBS.open_console, name=spec.name))) as ws:
                message = control(ws)
                assert message["error"]["type"] == "conflict"
                assert "not running" in message["message"]
        finally:
            agent.ensure_undefined(spec.name, force=True)
