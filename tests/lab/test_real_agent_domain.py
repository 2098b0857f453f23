"""The node agent drives a real tiny guest on the machine's libvirtd through every domain verb."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.agents import AgentNotFound
from controller.lab.guest import GuestImage
from controller.lab.heartbeat import SerialLogReader
from tests.helpers.agent_server import serving_agent
from tests.helpers.specs import tiny_domain_spec

pytestmark = pytest.mark.libvirtd

NAME = "corral-t-agent"


def test_define_run_stop_destroy_undefine(system_libvirt: str, tiny_guest: GuestImage) -> None:
    spec = tiny_domain_spec(NAME, tiny_guest)
    serial = Path(spec.serial_log_path or "")
    serial.unlink(missing_ok=True)
    with serving_agent(system_libvirt) as agent:
        try:
            first = agent.ensure_domain_defined(spec)
            again = agent.ensure_domain_defined(spec)
            assert (first.created, first.changed) == (True, True)
            assert again.changed is False
            observed = agent.get_domain(NAME).spec
            assert observed is not None
            # Real libvirt fills in the machine type left open (the test driver does not).
            assert observed.machine is not None and observed.machine.startswith("pc-")
            assert observed.model_dump(exclude={"machine"}) == spec.model_dump(exclude={"machine"})

            assert agent.ensure_running(NAME).changed is True
            reader = SerialLogReader({"system": serial})
            reader.wait_new(2, timeout_s=90)
            assert agent.ensure_running(NAME).changed is False
            running = agent.get_domain(NAME)
            assert (running.state, running.live and running.live.memory_mib) == ("running", 96)

            stopped = agent.ensure_stopped(NAME, timeout_s=60)
            observed = agent.get_domain(NAME)
            assert (stopped.changed, observed.state, observed.reason) == (
                True,
                "shutoff",
                "shutdown",
            ), stopped.message
            assert "GUEST-DOWN" in serial.read_text(errors="replace")  # the guest powered off
            assert agent.ensure_stopped(NAME, timeout_s=60).changed is False

            serial.unlink()
            agent.ensure_running(NAME)
            SerialLogReader({"system": serial}).wait_new(1, timeout_s=90)
            assert agent.ensure_destroyed(NAME).changed is True
            destroyed = agent.get_domain(NAME)
            assert (destroyed.state, destroyed.reason) == ("shutoff", "destroyed")
            assert agent.ensure_destroyed(NAME).changed is False

            assert agent.ensure_undefined(NAME).changed is True
            with pytest.raises(AgentNotFound):
                agent.get_domain(NAME)
            assert agent.ensure_undefined(NAME).changed is False
        finally:
            agent.ensure_undefined(NAME, force=True)
            serial.unlink(missing_ok=True)
