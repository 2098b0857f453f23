"""The namespaced lab: hosts are separate libvirtds; live migration keeps a guest running;
killing or cutting off a host is seen by clients as on real machines.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time

import libvirt
import pytest

from controller.lab.guest import GuestImage
from controller.lab.heartbeat import (
    HeartbeatWatcher,
    SerialLogReader,
    concurrent_runs,
    largest_gap,
    numbering_continues,
)
from controller.lab.hostconf import LIBVIRT_TCP_PORT
from controller.lab.libvirtd import Lab
from nodeagent.connection import ensure_event_loop
from tests.helpers.guests import remove_domain, running_tiny_guest, serial_path

pytestmark = [pytest.mark.libvirtd, pytest.mark.lab]

LIVE_MIGRATION = (
    libvirt.VIR_MIGRATE_LIVE
    | libvirt.VIR_MIGRATE_PEER2PEER
    | libvirt.VIR_MIGRATE_PERSIST_DEST
    | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
)
CLOSE_REASON_ERROR = libvirt.VIR_CONNECT_CLOSE_REASON_ERROR
CLOSE_REASON_EOF = libvirt.VIR_CONNECT_CLOSE_REASON_EOF
"""The remote side vanished: a read error or end of file, depending on the timing."""


def host_uuid(uri: str) -> str:
    conn = libvirt.open(uri)
    try:
        caps = conn.getCapabilities()
    finally:
        conn.close()
    return caps.split("<uuid>", 1)[1].split("</uuid>", 1)[0]


def test_hosts_are_distinct_libvirtds(lab: Lab) -> None:
    hosts = lab.hosts
    assert [h.name for h in hosts] == ["host-1", "host-2", "host-3"]
    assert len({host_uuid(h.uri) for h in hosts}) == 3


def test_run_in_host_sees_that_host_only(lab: Lab) -> None:
    host = lab.host("host-2")
    proc = lab.run_in_host(
        host.name,
        ["sh", "-c", "ip -4 -br addr show eth0; virsh -c qemu:///system capabilities"],
        stdout=subprocess.PIPE,
        text=True,
    )
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert f"{host.ip}/24" in out
    assert f"<uuid>{host_uuid(host.uri)}</uuid>" in out


def test_live_migration_keeps_heartbeats_going(lab: Lab, tiny_guest: GuestImage) -> None:
    source, target = lab.host("host-1"), lab.host("host-2")
    name = "corral-t-mig"
    src_conn, dst_conn = libvirt.open(source.uri), libvirt.open(target.uri)
    reader = SerialLogReader({h.name: h.outside(serial_path(name)) for h in (source, target)})
    try:
        with running_tiny_guest(src_conn, name, tiny_guest, source.outside(serial_path(name))):
            reader.wait_new(2, timeout_s=60, source=source.name)
            with HeartbeatWatcher(reader):
                started = time.monotonic()
                src_conn.lookupByName(name).migrateToURI3(target.uri, {}, LIVE_MIGRATION)
                migration_s = time.monotonic() - started
                reader.wait_new(3, timeout_s=30, source=target.name)
            dom = dst_conn.lookupByName(name)
            downtime = dom.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED).get("downtime", "?")
            beats = reader.beats
            print(
                f"\nlive migration: {migration_s:.2f} s total, largest heartbeat gap "
                f"{largest_gap(beats):.2f} s (one heartbeat per 1 s), libvirt downtime "
                f"{downtime} ms"
            )
            assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
            assert name not in [d.name() for d in src_conn.listAllDomains()]
            assert dom.isPersistent()
            assert numbering_continues(beats)  # the same guest, not a reboot
            assert concurrent_runs(beats) == []
            assert {b.source for b in beats} == {source.name, target.name}
    finally:
        remove_domain(dst_conn, name)
        target.outside(serial_path(name)).unlink(missing_ok=True)
        src_conn.close()
        dst_conn.close()


def test_killed_host_is_seen_by_an_open_connection_and_refuses_new_ones(
    lab: Lab, tiny_guest: GuestImage
) -> None:
    ensure_event_loop()  # close callbacks are delivered by libvirt's event loop
    host = lab.host("host-3")
    name = "corral-t-kill"
    serial = host.outside(serial_path(name))
    conn = libvirt.open(host.uri)
    closed = threading.Event()
    reasons: list[int] = []

    def on_close(_conn: libvirt.virConnect, reason: int, _opaque: object) -> None:
        reasons.append(reason)
        closed.set()

    conn.registerCloseCallback(on_close, None)
    try:
        with running_tiny_guest(conn, name, tiny_guest, serial):
            SerialLogReader({host.name: serial}).wait_new(1, timeout_s=60)
            killed_at = time.monotonic()
            killed = lab.kill_host(host.name)
            assert closed.wait(10), "the open connection never noticed the dead host"
            noticed_s = time.monotonic() - killed_at
            with pytest.raises(libvirt.libvirtError) as refused:
                libvirt.open(host.uri)
            print(
                f"\nhost kill: {len(killed)} processes killed (libvirtd + qemu), open "
                f"connection closed after {noticed_s * 1000:.0f} ms, new connection refused: "
                f"{refused.value.get_error_message()}"
            )
            assert len(killed) == 2
            assert reasons[0] in (CLOSE_REASON_ERROR, CLOSE_REASON_EOF)
            lab.start_host(host.name)
            after = libvirt.open(host.uri)
            try:
                state, _ = after.lookupByName(name).state()
            finally:
                after.close()
            assert state == libvirt.VIR_DOMAIN_SHUTOFF  # its QEMU died with the host
    finally:
        lab.start_host(host.name)
        cleanup = libvirt.open(host.uri)
        remove_domain(cleanup, name)
        cleanup.close()


def test_partitioned_host_is_unreachable_until_healed(lab: Lab) -> None:
    host = lab.host("host-3")
    lab.partition(host.name)
    try:
        with pytest.raises(OSError):
            socket.create_connection((host.ip, LIBVIRT_TCP_PORT), timeout=1.0).close()
        local = libvirt.open(host.socket_uri)  # the host itself still runs
        try:
            assert local.getVersion() > 0
        finally:
            local.close()
    finally:
        lab.heal(host.name)
    socket.create_connection((host.ip, LIBVIRT_TCP_PORT), timeout=5.0).close()
