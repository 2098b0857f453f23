"""Thin, idempotent wrappers around `ip` for the lab's bridge, veths and network namespaces.

Each ensure_* call leaves the object present and configured, whether or not it existed; each
remove_* call leaves it absent. Errors from `ip` become LabCommandError with its stderr.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path


class LabCommandError(RuntimeError):
    """A command that builds or tears down the lab failed; carries argv and stderr."""

    def __init__(self, argv: list[str], returncode: int, stderr: str) -> None:
        super().__init__(f"{' '.join(argv)}: exit {returncode}: {stderr.strip()}")
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr


def run(argv: list[str], check: bool = True, timeout_s: float = 30.0) -> str:
    """Runs argv and returns its stdout; raises LabCommandError if it fails and `check`."""
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
    if check and proc.returncode != 0:
        raise LabCommandError(argv, proc.returncode, proc.stderr)
    return proc.stdout


def link_exists(name: str, netns: str | None = None) -> bool:
    """Returns True if the link `name` exists (in `netns`, or the root namespace)."""
    prefix = ["ip", "-n", netns] if netns else ["ip"]
    return subprocess.run([*prefix, "link", "show", name], capture_output=True).returncode == 0


def list_links(prefix: str) -> list[str]:
    """Returns the names of root-namespace links starting with `prefix`."""
    links = json.loads(run(["ip", "-j", "link", "show"]) or "[]")
    return sorted(link["ifname"] for link in links if link["ifname"].startswith(prefix))


def list_netns(prefix: str) -> list[str]:
    """Returns the names of network namespaces starting with `prefix`."""
    names = [line.split()[0] for line in run(["ip", "netns", "list"]).splitlines() if line]
    return sorted(name for name in names if name.startswith(prefix))


def ensure_bridge(name: str, address: str) -> None:
    """Makes the bridge `name` exist, up, with `address` (e.g. 10.77.0.1/24)."""
    if not link_exists(name):
        run(["ip", "link", "add", name, "type", "bridge"])
    run(["ip", "addr", "replace", address, "dev", name])
    run(["ip", "link", "set", name, "up"])


def ensure_netns(name: str) -> None:
    """Makes the network namespace `name` exist with its loopback up."""
    if name not in list_netns(name):
        run(["ip", "netns", "add", name])
    run(["ip", "-n", name, "link", "set", "lo", "up"])


def ensure_veth(veth: str, bridge: str, netns: str, address: str) -> None:
    """Makes a veth pair: `veth` on `bridge` in the root namespace, `eth0` with `address`
    inside `netns`; both up.
    """
    if not link_exists(veth):
        if link_exists("eth0", netns):
            run(["ip", "-n", netns, "link", "del", "eth0"])
        run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns])
    run(["ip", "link", "set", veth, "master", bridge])
    run(["ip", "link", "set", veth, "up"])
    run(["ip", "-n", netns, "addr", "replace", address, "dev", "eth0"])
    run(["ip", "-n", netns, "link", "set", "eth0", "up"])


def set_link_up(name: str, up: bool) -> None:
    """Sets the root-namespace link `name` up or down."""
    run(["ip", "link", "set", name, "up" if up else "down"])


def netns_pids(name: str) -> list[int]:
    """Returns the pids of processes in network namespace `name` (empty if it is gone)."""
    out = run(["ip", "netns", "pids", name], check=False)
    return sorted(int(pid) for pid in out.split())


def process_name(pid: int) -> str | None:
    """Returns the kernel's short name (comm) of `pid`, or None if it is gone or a zombie
    (a killed daemon stays a zombie until init reaps it, and must not count as running).
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    name, _, rest = stat.partition(" (")[2].rpartition(")")
    return None if rest.split()[0] == "Z" else name


def kill_and_wait(pids: list[int], timeout_s: float = 10.0) -> list[int]:
    """SIGKILLs `pids` and waits until they are gone; returns those still alive at timeout."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout_s
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        for pid in alive:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
        alive = [pid for pid in alive if process_name(pid) is not None]
        if alive:
            time.sleep(0.02)
    return alive


def remove_netns(name: str) -> None:
    """Deletes the network namespace `name` if it exists (its processes must be gone)."""
    if name in list_netns(name):
        run(["ip", "netns", "del", name])


def remove_link(name: str, timeout_s: float = 10.0) -> None:
    """Makes the root-namespace link `name` absent: deletes it, or waits while the kernel
    does (a veth whose peer's namespace was just deleted goes away asynchronously).

    Raises LabCommandError if it still exists after timeout_s.
    """
    deadline = time.monotonic() + timeout_s
    while link_exists(name):
        proc = subprocess.run(["ip", "link", "del", name], capture_output=True, text=True)
        if time.monotonic() > deadline:
            raise LabCommandError(["ip", "link", "del", name], proc.returncode, proc.stderr)
        time.sleep(0.05)
