"""Commit-to-defined latency on this machine's real libvirtd (target: < 2 s).

A running Controller loop polls a git repository (a temp dir) through a GitSource and
drives a real `corral agent` over qemu:///system. Each round commits one new VM manifest
and times, from the moment the commit exists:
- seen:    the loop has fetched and loaded the commit (its snapshot returned it);
- defined: libvirt has the domain (polled on a separate connection every 5 ms);
- ready:   the loop finished a pass reporting every object Ready.
The VMs are `runStrategy: Halted` (defined, not started) so rounds do not pile up guests;
one last round with `Always` also times the domain becoming active.

    python bench/bench_commit_latency.py [--rounds 5] [--poll 0.2] [--db postgresql://...]

Needs root, libvirtd with QEMU and the tiny guest (built on first use).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import uuid
from contextlib import suppress
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import git
import libvirt

from controller.agentpool import AgentPool
from controller.lab.guest import GuestImage, ensure_tiny_guest
from controller.lab.libvirtd import ensure_system_libvirtd
from controller.localagent import LocalAgents
from controller.loop import Controller, PassResult, SourceSetting
from controller.sources import GitSource
from controller.sources.base import Snapshot
from controller.store import open_store
from schemas.host import Host

TARGET_S = 2.0
AUTHOR = git.Actor("Corral bench", "bench@corral.invalid")

libvirt.registerErrorHandler(lambda _ctx, _err: None, None)


class TimedGitSource(GitSource):
    """A GitSource that notes when each revision was first returned by a snapshot."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.first_seen: dict[str, float] = {}

    def snapshot(self) -> Snapshot:
        snapshot = super().snapshot()
        self.first_seen.setdefault(snapshot.revision, time.monotonic())
        return snapshot


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def host_doc(name: str, address: str) -> dict:
    return {
        "apiVersion": "corral.dev/v1alpha1",
        "kind": "Host",
        "metadata": {"name": name},
        "spec": {"address": address, "virtualization": "qemu"},
    }


def host_yaml(name: str, address: str) -> str:
    return (
        f"apiVersion: corral.dev/v1alpha1\nkind: Host\nmetadata:\n  name: {name}\n"
        f"spec:\n  address: {address}\n  virtualization: qemu\n"
    )


def network_yaml(name: str, cidr: str) -> str:
    return (
        f"apiVersion: corral.dev/v1alpha1\nkind: Network\nmetadata:\n  name: {name}\n"
        f"spec:\n  mode: isolated\n  ipv4:\n    cidr: {cidr}\n"
    )


def vm_yaml(name: str, image: GuestImage, network: str, run: str) -> str:
    return f"""\
apiVersion: corral.dev/v1alpha1
kind: VirtualMachine
metadata:
  name: {name}
spec:
  runStrategy: {run}
  cpus: 1
  memory: 96Mi
  boot:
    kernel: {image.kernel}
    initrd: {image.initrd}
    cmdline: {image.cmdline}
  nics:
    - name: eth0
      network: {network}
"""


def free_cidr(conn: libvirt.virConnect) -> str:
    """Return a 10.121.x.0/24 no libvirt network on `conn` mentions."""
    used = " ".join(net.XMLDesc() for net in conn.listAllNetworks())
    for third in range(1, 255):
        if f"10.121.{third}." not in used:
            return f"10.121.{third}.0/24"
    raise RuntimeError("no free 10.121.x.0/24")


class Bench:
    """The repository, the loop in its thread, and what it made on libvirt (for cleanup)."""

    def __init__(self, workdir: Path, db: str | None, poll_s: float) -> None:
        self.uri = ensure_system_libvirtd()
        self.image = ensure_tiny_guest()
        self.conn = libvirt.open(self.uri)
        self.prefix = f"bench{uuid.uuid4().hex[:5]}"
        self.network = f"{self.prefix}-net"
        self.vms: list[str] = []
        self.repo_dir = workdir / "repo"
        self.repo = git.Repo.init(self.repo_dir, initial_branch="main")
        address = f"http://127.0.0.1:{free_port()}"
        self.agents = LocalAgents(self.uri, workdir / "logs")
        self.agents.ensure(Host.model_validate(host_doc(f"{self.prefix}-host", address)))
        self.commit(
            "host and network",
            {
                "host.yaml": host_yaml(f"{self.prefix}-host", address),
                "network.yaml": network_yaml(self.network, free_cidr(self.conn)),
            },
        )
        self.source = TimedGitSource(str(self.repo_dir), workdir / "cache", branch="main")
        self.store = open_store(db or f"sqlite:///{workdir / 'corral.db'}")
        setting = SourceSetting(self.source, "git", "bench", prune=True, poll_s=poll_s)
        self.controller = Controller(
            self.store, [setting], AgentPool(), resync_s=60.0, busy_requeue_s=0.2
        )
        self.passes: list[tuple[float, PassResult]] = []
        self.changed = threading.Condition()
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=self.controller.run, args=(self.stop, self.on_pass), daemon=True
        )

    def on_pass(self, result: PassResult) -> None:
        with self.changed:
            self.passes.append((time.monotonic(), result))
            self.changed.notify_all()

    def commit(self, message: str, files: dict[str, str]) -> str:
        for name, text in files.items():
            (self.repo_dir / name).write_text(text)
            self.repo.index.add([name])
        return self.repo.index.commit(message, author=AUTHOR, committer=AUTHOR).hexsha

    def wait_converged(self, after: float, timeout_s: float = 120.0) -> float:
        """Return when the first converged pass ending after `after` ended."""
        deadline = time.monotonic() + timeout_s
        with self.changed:
            while True:
                done = [t for t, r in self.passes if t > after and r.converged]
                if done:
                    return done[0]
                if not self.changed.wait(max(0.0, deadline - time.monotonic())):
                    raise TimeoutError(f"not converged in {timeout_s} s")

    def wait_domain(self, name: str, active: bool, timeout_s: float = 60.0) -> float:
        """Return the moment libvirt first shows `name` defined (and active, if asked)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with suppress(libvirt.libvirtError):
                dom = self.conn.lookupByName(name)
                if not active or dom.isActive():
                    return time.monotonic()
            time.sleep(0.005)
        raise TimeoutError(f"{name} not {'active' if active else 'defined'} in {timeout_s} s")

    def round(self, index: int, run: str) -> dict[str, float]:
        name = f"{self.prefix}-vm{index}"
        self.vms.append(name)
        sha = self.commit(
            f"add {name}", {f"{name}.yaml": vm_yaml(name, self.image, self.network, run)}
        )
        committed = time.monotonic()
        defined = self.wait_domain(name, active=False)
        figures = {"defined": defined - committed}
        if run == "Always":
            figures["active"] = self.wait_domain(name, active=True) - committed
        figures["ready"] = self.wait_converged(committed) - committed
        figures["seen"] = self.source.first_seen[sha] - committed
        return figures

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        self.agents.close()
        self.controller.pool.close()
        self.store.close()
        for name in self.vms:
            with suppress(libvirt.libvirtError):
                dom = self.conn.lookupByName(name)
                with suppress(libvirt.libvirtError):
                    dom.destroy()
                dom.undefine()
            for log in (
                f"/var/log/libvirt/qemu/{name}-serial.log",
                f"/var/log/libvirt/qemu/{name}.log",
            ):
                Path(log).unlink(missing_ok=True)
        with suppress(libvirt.libvirtError):
            net = self.conn.networkLookupByName(self.network)
            with suppress(libvirt.libvirtError):
                net.destroy()
            net.undefine()
        self.conn.close()


def summary(label: str, values: list[float]) -> str:
    return (
        f"{label:<8} median {statistics.median(values):6.3f} s   "
        f"min {min(values):6.3f} s   max {max(values):6.3f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="Halted VMs committed one by one")
    parser.add_argument("--poll", type=float, default=0.2, help="git poll interval (s)")
    parser.add_argument("--db", default=None, help="store URL (default: SQLite in a temp dir)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="corral-bench-") as tmp:
        bench = Bench(Path(tmp), args.db, args.poll)
        try:
            started = time.monotonic()
            bench.thread.start()
            bench.wait_converged(started)
            print(f"host and network converged in {time.monotonic() - started:.2f} s")
            print(f"poll interval {args.poll} s; store {bench.store.url}")
            rows = []
            for i in range(args.rounds):
                figures = bench.round(i, "Halted")
                rows.append(figures)
                print(
                    f"round {i}: seen {figures['seen']:.3f} s  defined {figures['defined']:.3f} s"
                    f"  ready {figures['ready']:.3f} s"
                )
            running = bench.round(args.rounds, "Always")
            print(
                f"running round: seen {running['seen']:.3f} s  defined {running['defined']:.3f} s"
                f"  active {running['active']:.3f} s  ready {running['ready']:.3f} s"
            )
        finally:
            bench.close()

    print()
    print("commit -> ... over", len(rows), "rounds (Halted VMs):")
    for key in ("seen", "defined", "ready"):
        print(summary(key, [r[key] for r in rows]))
    defined = statistics.median(r["defined"] for r in rows)
    verdict = "meets" if defined < TARGET_S else "misses"
    print(f"commit -> defined median {defined:.3f} s: {verdict} the {TARGET_S:.0f} s target "
          f"({defined / TARGET_S:.2f} of it)")  # fmt: skip


if __name__ == "__main__":
    main()
