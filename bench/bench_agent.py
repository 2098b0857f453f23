"""Benchmark: full observed-state read (GET /v1/state path) of a host with 200 domains.

Runs the agent's state reader over libvirt's test driver (half of the domains
running) and prints milliseconds per read; the target is < 50 ms.
    python bench/bench_agent.py [--domains 200] [--reads 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agentapi import DiskSpec, DomainSpec, NicSpec
from nodeagent.agent import Agent
from nodeagent.domains import ensure_domain_defined, ensure_running
from nodeagent.state import read_host_state

NODE = Path(__file__).resolve().parent.parent / "tests" / "data" / "node.xml"
TARGET_MS = 50.0


def populate(agent: Agent, count: int) -> None:
    """Define `count` realistic domains and start every other one."""
    for n in range(count):
        name = f"vm-{n:03d}"
        spec = DomainSpec(
            name=name,
            uuid=str(uuid.UUID(int=n + 1)),
            vcpus=1,
            max_vcpus=2,
            memory_mib=96,
            max_memory_mib=256,
            kernel="/var/cache/corral/guest/vmlinuz",
            initrd="/var/cache/corral/guest/initrd.gz",
            cmdline="console=ttyS0",
            disks=[DiskSpec(target="vda", pool="images", volume=f"{name}.qcow2")],
            nics=[NicSpec(network="default")],
            serial_log_path=f"/var/log/libvirt/qemu/{name}.log",
            labels={"corral.dev/vm": name, "corral.dev/generation": "1"},
        )
        ensure_domain_defined(agent.ctx, name, spec)
        if n % 2 == 0:
            ensure_running(agent.ctx, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--domains", type=int, default=200)
    parser.add_argument("--reads", type=int, default=20)
    args = parser.parse_args()

    agent = Agent(f"test://{NODE}")
    agent.start()
    try:
        populate(agent, args.domains)
        start = time.perf_counter()
        read_host_state(agent.ctx)
        cold_ms = (time.perf_counter() - start) * 1000
        timings = []
        cpu = []
        for _ in range(args.reads):
            start, start_cpu = time.perf_counter(), time.thread_time()
            state = read_host_state(agent.ctx)
            timings.append((time.perf_counter() - start) * 1000)
            cpu.append((time.thread_time() - start_cpu) * 1000)
        assert len(state.domains) == args.domains
        median = statistics.median(timings)
        print(
            f"full state read, {args.domains} domains ({args.domains // 2 + args.domains % 2} "
            f"running): median {median:.1f} ms, min {min(timings):.1f} ms, "
            f"max {max(timings):.1f} ms over {args.reads} reads (first, cold: {cold_ms:.1f} ms); "
            f"target < {TARGET_MS:.0f} ms "
            f"-> {'met' if median < TARGET_MS else 'MISSED'} ({median / TARGET_MS:.2f}x target)"
        )
        print(
            f"CPU time of the reading thread: median {statistics.median(cpu):.1f} ms "
            f"(wall above includes waiting for a busy machine: load {os.getloadavg()[0]:.1f})"
        )
    finally:
        agent.close()


if __name__ == "__main__":
    main()
