"""The VNC display of a real TCG guest through the agent's proxy: the RFB handshake comes
through with a ticket; a ticket works once and expires; no ticket, no connection."""

from __future__ import annotations

import time

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from agentapi import VERBS
from controller.agentverbs import call
from controller.lab.guest import GuestImage
from tests.helpers.agent_server import serving_agent
from tests.helpers.specs import tiny_domain_spec

pytestmark = pytest.mark.libvirtd

NAME = "corral-t-vnc"


def test_rfb_handshake_through_the_proxy(system_libvirt: str, tiny_guest: GuestImage) -> None:
    spec = tiny_domain_spec(NAME, tiny_guest).model_copy(update={"graphics": "vnc"})
    with serving_agent(system_libvirt) as agent:
        base = agent.websocket_address(call(VERBS.open_graphics, name=NAME))
        try:
            agent.ensure_domain_defined(spec)
            agent.ensure_running(NAME)
            live = agent.get_domain(NAME).live
            assert live is not None and live.graphics == "vnc"

            ticket = agent.issue_graphics_ticket(NAME, "vnc", ttl_s=30)
            started = time.monotonic()
            with connect(f"{base}?ticket={ticket.ticket}", subprotocols=["binary"]) as ws:
                assert ws.subprotocol == "binary"
                greeting = ws.recv(timeout=30)
                print(f"RFB greeting after {time.monotonic() - started:.3f} s: {greeting!r}")
                assert greeting == b"RFB 003.008\n"
                ws.send(b"RFB 003.008\n")  # the client picks the version; security types follow
                security = ws.recv(timeout=30)
                assert isinstance(security, bytes) and security[0] >= 1 and 1 in security[1:]

            # Used once: the same ticket opens nothing again.
            with pytest.raises(InvalidStatus) as reused:
                connect(f"{base}?ticket={ticket.ticket}")
            assert reused.value.response.status_code == 403

            with pytest.raises(InvalidStatus) as missing:
                connect(base)
            assert missing.value.response.status_code == 403

            short = agent.issue_graphics_ticket(NAME, "vnc", ttl_s=1)
            time.sleep(1.2)
            with pytest.raises(InvalidStatus) as expired:
                connect(f"{base}?ticket={short.ticket}")
            assert expired.value.response.status_code == 403
        finally:
            agent.ensure_undefined(NAME, force=True)
