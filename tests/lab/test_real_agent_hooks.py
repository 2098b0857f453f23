"""A before_vm_start hook rewrites the domain XML, and the running domain shows it."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt
import pytest

from controller.lab.guest import GuestImage
from controller.lab.heartbeat import SerialLogReader
from tests.helpers.agent_server import serving_agent
from tests.helpers.hooks import write_description_hook
from tests.helpers.specs import tiny_domain_spec

pytestmark = pytest.mark.libvirtd

NAME = "corral-t-hook"
DESCRIPTION = "rewritten by the add_description hook"


def test_before_start_hook_rewrites_the_running_domain(
    system_libvirt: str, tiny_guest: GuestImage, tmp_path: Path
) -> None:
    write_description_hook(tmp_path / "hooks", "10_add_description.py", DESCRIPTION)
    spec = tiny_domain_spec(NAME, tiny_guest, hooks=["add_description"])
    serial = Path(spec.serial_log_path or "")
    serial.unlink(missing_ok=True)
    with serving_agent(system_libvirt, hooks_dir=tmp_path / "hooks") as agent:
        try:
            agent.ensure_domain_defined(spec)
            agent.ensure_running(NAME)
            SerialLogReader({"system": serial}).wait_new(1, timeout_s=90)
            conn = libvirt.open(system_libvirt)
            try:
                live = ET.fromstring(conn.lookupByName(NAME).XMLDesc(0))
            finally:
                conn.close()
            assert live.findtext("description") == DESCRIPTION
        finally:
            agent.ensure_undefined(NAME, force=True)
            serial.unlink(missing_ok=True)
