"""The tiny guest boots under TCG on the machine's own libvirtd and proves it runs."""

from __future__ import annotations

import time
from pathlib import Path

import libvirt
import pytest

from controller.lab.guest import GuestImage
from controller.lab.heartbeat import SerialLogReader, numbering_continues
from tests.helpers.guests import running_tiny_guest, serial_path

pytestmark = pytest.mark.libvirtd


def test_tiny_guest_boots_and_heartbeats(system_libvirt: str, tiny_guest: GuestImage) -> None:
    conn = libvirt.open(system_libvirt)
    try:
        serial = Path(serial_path("corral-t-boot"))
        started = time.monotonic()
        with running_tiny_guest(conn, "corral-t-boot", tiny_guest, serial) as dom:
            reader = SerialLogReader({"system": serial})
            beats = reader.wait_new(3, timeout_s=60)
            print(
                f"tiny guest: GUEST-UP {reader.guest_up['system'] - started:.1f} s after start, "
                f"3 heartbeats after {beats[-1].seen_at - started:.1f} s"
            )
            assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
            assert numbering_continues(beats)
            assert [b.number for b in beats[:3]] == [1, 2, 3]
            assert beats[2].uptime_s > beats[0].uptime_s
            assert "/ # " in serial.read_text(errors="replace")  # the console shell is up
    finally:
        conn.close()
