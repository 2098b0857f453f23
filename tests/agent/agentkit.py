"""Helpers shared by the agent tests: test-driver host, loopback server, specs, hooks."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from agentapi import DomainSpec

DATA = Path(__file__).resolve().parent.parent / "data"
NODE_URI = f"test://{DATA / 'node.xml'}"
UUIDS = [f"6f0e8b1c-4b8e-4c47-9a43-{n:012x}" for n in range(1, 64)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerThread:
    """A uvicorn server running in a daemon thread until `stop`."""

    def __init__(self, server: uvicorn.Server) -> None:
        self.server = server
        self.thread = threading.Thread(target=server.run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def make_spec(name: str = "web-1", n: int = 0, **overrides: Any) -> DomainSpec:
    """Return a realistic resolved DomainSpec (tiny TCG guest, direct kernel boot)."""
    fields: dict[str, Any] = {
        "name": name,
        "uuid": UUIDS[n],
        "vcpus": 1,
        "max_vcpus": 2,
        "memory_mib": 96,
        "max_memory_mib": 256,
        "kernel": "/var/cache/corral/guest/vmlinuz",
        "initrd": "/var/cache/corral/guest/initrd.gz",
        "cmdline": "console=ttyS0 panic=-1",
        "disks": [{"target": "vda", "pool": "images", "volume": f"{name}.qcow2"}],
        "nics": [{"network": "default", "mac": f"52:54:00:00:00:{n + 1:02x}"}],
        "serial_log_path": f"/var/log/libvirt/qemu/{name}.serial.log",
        "labels": {"corral.dev/vm": name, "corral.dev/generation": "1"},
    }
    fields.update(overrides)
    return DomainSpec(**fields)


def write_hook(hooks_dir: Path, point: str, filename: str, body: str) -> Path:
    """Write an executable hook script (shell) into hooks_dir/point/filename."""
    directory = hooks_dir / point
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / filename
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def revise(spec: DomainSpec, **changes: Any) -> DomainSpec:
    """Return `spec` with `changes`, validated (and normalised) like a new request."""
    return DomainSpec.model_validate({**spec.model_dump(), **changes})
