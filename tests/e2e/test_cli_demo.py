"""The README's first command on this machine: `corral up examples/demo --until-ready`.

Runs the real `corral` CLI as subprocesses in a temp state dir, on the real libvirtd,
from a clean slate (the demo's domains, network and pool are removed before and after).
Then the read commands must tell the truth about what runs, and `corral plan` on the same
manifests (with an agent observing the host again) must find nothing to do.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest

from controller.lab.guest import GuestImage
from controller.localagent import answering, loopback_port
from controller.manifests import load_paths
from schemas.host import Host
from schemas.network import Network
from schemas.storagepool import StoragePool
from schemas.vm import RunStrategy, VirtualMachine
from tests.e2e.e2ekit import REPO_ROOT, serial_log, start_agent, stop_agent, wait_heartbeats

pytestmark = pytest.mark.libvirtd

DEMO = REPO_ROOT / "examples" / "demo"
STABLE_GUEST = (Path("/var/cache/corral/guest/vmlinuz"), Path("/var/cache/corral/guest/initrd.img"))
UP_TIMEOUT_S = 240


def demo_objects() -> list:
    result = load_paths([DEMO], root=DEMO)
    assert not result.errors, [str(e) for e in result.errors]
    return [loaded.resource for loaded in result.objects]


def remove_demo(uri: str) -> None:
    """Remove the demo's domains, networks and pools (and the pools' files) from libvirt."""
    import libvirt

    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    conn = libvirt.open(uri)
    try:
        objects = demo_objects()
        for vm in (o for o in objects if isinstance(o, VirtualMachine)):
            with suppress(libvirt.libvirtError):
                dom = conn.lookupByName(vm.metadata.name)
                with suppress(libvirt.libvirtError):
                    dom.destroy()
                dom.undefine()
            serial_log(vm.metadata.name).unlink(missing_ok=True)
        for net in (o for o in objects if isinstance(o, Network)):
            with suppress(libvirt.libvirtError):
                found = conn.networkLookupByName(net.metadata.name)
                with suppress(libvirt.libvirtError):
                    found.destroy()
                found.undefine()
        for pool in (o for o in objects if isinstance(o, StoragePool)):
            with suppress(libvirt.libvirtError):
                found = conn.storagePoolLookupByName(pool.metadata.name)
                with suppress(libvirt.libvirtError):
                    found.destroy()
                found.undefine()
            if pool.spec.path:
                shutil.rmtree(pool.spec.path, ignore_errors=True)
    finally:
        conn.close()


@pytest.fixture
def demo_host() -> Host:
    [host] = [o for o in demo_objects() if isinstance(o, Host)]
    return host


@pytest.fixture
def clean_demo(system_libvirt: str, tiny_guest: GuestImage, demo_host: Host) -> Iterator[None]:
    """Start from no demo objects on libvirt and leave none behind (also on failure)."""
    if answering(demo_host.spec.address):
        pytest.skip(f"an agent already answers at {demo_host.spec.address}: a demo is running")
    remove_demo(system_libvirt)
    try:
        yield
    finally:
        remove_demo(system_libvirt)


def corral(*args: str, state_dir: Path, timeout_s: float = 60) -> subprocess.CompletedProcess:
    """Run `corral ARGS --state-dir STATE_DIR` from the repository; return the result."""
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    return subprocess.run(
        [sys.executable, "-m", "controller.cli.main", *args, "--state-dir", str(state_dir)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def rows(output: str, prefix: str) -> dict[str, list[str]]:
    """Return the table rows of `output` starting with `prefix`, keyed by first column."""
    return {
        line.split()[0]: line.split() for line in output.splitlines() if line.startswith(prefix)
    }


def test_corral_up_demo(
    tmp_path: Path, clean_demo: None, demo_host: Host, system_libvirt: str
) -> None:
    for path in STABLE_GUEST:
        assert path.is_symlink() and path.resolve().is_file(), f"{path} is not a stable link"
    state = tmp_path / "state"
    vms = [o for o in demo_objects() if isinstance(o, VirtualMachine)]
    running = [vm.metadata.name for vm in vms if vm.spec.run_strategy is RunStrategy.ALWAYS]
    halted = [vm.metadata.name for vm in vms if vm.spec.run_strategy is RunStrategy.HALTED]
    assert running and halted, "the demo shows a running and a halted VM"

    up = corral(
        "up", str(DEMO), "--until-ready", "--timeout", str(UP_TIMEOUT_S),
        state_dir=state, timeout_s=UP_TIMEOUT_S + 60,
    )  # fmt: skip
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    assert "Converged in" in up.stdout
    assert not answering(demo_host.spec.address), "`corral up` stops the agents it started"
    for name in running:
        wait_heartbeats(name, 2)

    status = corral("status", state_dir=state)
    assert status.returncode == 0, status.stderr
    assert "Everything is Ready." in status.stdout
    assert f"VMs: {len(running)} Running, {len(halted)} Stopped" in status.stdout
    assert rows(status.stdout, f" {demo_host.metadata.name} ")

    listing = corral("get", "vm", "-o", "wide", state_dir=state)
    assert listing.returncode == 0, listing.stderr
    table = rows(listing.stdout, "VirtualMachine/")
    assert set(table) == {f"VirtualMachine/{vm.metadata.name}" for vm in vms}
    for name in running:
        assert table[f"VirtualMachine/{name}"][1:4] == ["True", "Running", demo_host.metadata.name]
    for name in halted:
        assert table[f"VirtualMachine/{name}"][1:4] == ["True", "Stopped", demo_host.metadata.name]

    first = running[0]
    describe = corral("describe", "vm", first, state_dir=state)
    assert describe.returncode == 0, describe.stderr
    assert f"VirtualMachine/{first}" in describe.stdout
    assert f"Phase: Running   Host: {demo_host.metadata.name}" in describe.stdout
    conditions = rows(describe.stdout, " Ready ")
    assert conditions["Ready"][1:3] == ["True", "Converged"]
    assert "Events" in describe.stdout

    events = corral("events", state_dir=state)
    assert events.returncode == 0, events.stderr
    lines = [line.split() for line in events.stdout.splitlines()]
    reasons = {(c[2], c[3]) for c in lines if len(c) > 3 and c[1] in ("Normal", "Warning")}
    assert ("ApplySucceeded", "Source/demo") in reasons, events.stdout
    for name in running:
        assert ("Starting", f"VirtualMachine/{name}") in reasons, events.stdout
        assert ("Converged", f"VirtualMachine/{name}") in reasons, events.stdout

    # `corral plan` observes the host again through its agent, as a controller would.
    port = loopback_port(demo_host)
    assert port is not None
    agent = start_agent(system_libvirt, tmp_path / "agent.log", port=port)
    try:
        plan = corral("plan", str(DEMO), state_dir=state)
    finally:
        stop_agent(agent.process)
    assert plan.returncode == 0, plan.stderr
    assert "No changes." in plan.stdout, plan.stdout
