"""The self-fence: kill this host's running HA domains now, without waiting on libvirtd.

libvirt's destroy sends SIGTERM and waits seconds before SIGKILL, and its calls can block
forever (a hung libvirtd holds every client); a fence that waits for either would let HA
VMs outlive the deadline the controller counts on. So the QEMU process of every HA domain
known to this host is sent SIGKILL first; then libvirt destroys any HA domain it knows
and the kill missed, in a helper thread bounded by `libvirt_timeout_s`. HA domains are
known from the latest successful listing (`HADomainCache`) and from the persistent
definitions on disk, and their QEMU processes from libvirt's pid files (inside this
host's mount namespace), each checked against its command line before the kill.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from agentapi import FenceRecord

log = logging.getLogger(__name__)

LIBVIRT_FENCE_TIMEOUT_S = 1.0
QEMU_RUN_DIR = Path("/run/libvirt/qemu")
QEMU_CONF_DIR = Path("/etc/libvirt/qemu")
HA_MARKER = re.compile(r"<corral:ha\b[^>]*>\s*true\s*</corral:ha>")
"""Corral's HA flag in a domain's metadata (nodeagent.domxml writes it)."""


class HADomainCache:
    """The names of the HA domains seen running at the latest successful libvirt listing."""

    def __init__(self) -> None:
        self._names: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    def update(self, names: Iterable[str]) -> None:
        with self._lock:
            self._names = frozenset(names)

    @property
    def names(self) -> frozenset[str]:
        return self._names


def ha_names_on_disk(conf_dir: Path = QEMU_CONF_DIR) -> set[str]:
    """Return the domains whose persistent definition marks them HA (read without libvirt)."""
    names = set()
    try:
        entries = list(conf_dir.glob("*.xml"))
    except OSError:
        return names
    for path in entries:
        try:
            if HA_MARKER.search(path.read_text(errors="replace")):
                names.add(path.stem)
        except OSError:
            continue
    return names


def qemu_pid(name: str, run_dir: Path = QEMU_RUN_DIR) -> int | None:
    """Return the pid of domain `name`'s QEMU when its pid file names a live QEMU of it."""
    try:
        pid = int((run_dir / f"{name}.pid").read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    if f"guest={name}".encode() not in b",".join(cmdline) and name.encode() not in cmdline:
        return None  # a stale pid file whose pid now belongs to something else
    return pid


def kill_qemus(names: Iterable[str], run_dir: Path = QEMU_RUN_DIR) -> list[FenceRecord]:
    """SIGKILL the QEMU process of each named domain that runs; return what was done."""
    records = []
    for name in sorted(set(names)):
        pid = qemu_pid(name, run_dir)
        if pid is None:
            continue
        try:
            os.kill(pid, signal.SIGKILL)
            message, ok = f"killed QEMU pid {pid}", True
        except OSError as exc:
            message, ok = f"kill of QEMU pid {pid} failed: {exc}", False
        records.append(FenceRecord(vm=name, at=time.time(), ok=ok, message=message))
    return records


def fence_with_fallback(
    by_libvirt: Callable[[set[str]], list[FenceRecord]],
    known_ha: Callable[[], Iterable[str]],
    *,
    libvirt_timeout_s: float = LIBVIRT_FENCE_TIMEOUT_S,
    run_dir: Path = QEMU_RUN_DIR,
) -> list[FenceRecord]:
    """Kill the QEMU of every known HA domain at once, then let libvirt destroy whatever
    HA domain still runs (given the names already killed), within `libvirt_timeout_s`.

    SIGKILL first: libvirt's destroy sends SIGTERM and waits seconds before SIGKILL, and a
    hung libvirtd would not answer at all. The helper thread of a hung libvirt call is left
    behind (daemon): it cannot be interrupted.
    """
    records = kill_qemus(known_ha(), run_dir)
    killed = {r.vm for r in records if r.ok}
    outcome: list[list[FenceRecord]] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(by_libvirt(killed))
        except BaseException as exc:  # reported below; the kills above already happened
            failure.append(exc)

    worker = threading.Thread(target=run, name="fence-libvirt", daemon=True)
    worker.start()
    worker.join(libvirt_timeout_s)
    if outcome:
        return records + outcome[0]
    why = f"failed: {failure[0]}" if failure else f"did not answer in {libvirt_timeout_s:g} s"
    log.warning("self-fence: libvirt %s; %d HA QEMU killed directly", why, len(killed))
    return records
