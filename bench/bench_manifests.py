"""Load + validate 10,000 generated manifest objects; print objects/s and peak memory.

Target: >= 5,000 objects/s on one core. The load is single-threaded; objects/s is taken
from CPU time so that other work on the machine does not skew it (wall time is printed
too). Run: `python bench/bench_manifests.py [--objects N]`.
The fleet is mixed like a real one (mostly VMs and their volumes, some hosts, networks,
pools, templates, affinity groups, snapshots, one policy), in multi-document files of
100 objects, with every reference resolving, so the whole pipeline runs: read, parse,
convert, validate, duplicate and reference checks.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from controller.manifests import load_paths

HEAD = "apiVersion: corral.dev/v1alpha1\nkind: {kind}\nmetadata:\n  name: {name}\n"

BODIES = {
    "Host": """  labels:
    zone: z{z}
    rack: r{r}
spec:
  address: https://10.77.{z}.{r}:8470
  virtualization: qemu
  reserved:
    cpu: 500m
    memory: 1Gi
  fencing:
    leaseTtlS: 5
""",
    "Network": """spec:
  mode: nat
  bridge: br{i}
  ipv4:
    cidr: 10.{a}.{b}.0/24
    dhcp: {{start: 10.{a}.{b}.100, end: 10.{a}.{b}.200}}
""",
    "StoragePool": """spec:
  type: dir
  path: /var/lib/corral/pool-{i}
""",
    "Template": """spec:
  cpus: 1
  memory: 512Mi
  disks:
    - name: root
      volume: base
  nics:
    - name: eth0
      network: net-0
""",
    "Volume": """spec:
  pool: pool-{pool}
  size: 20Gi
  source:
    volume: base
""",
    "VirtualMachine": """  labels:
    app: app-{app}
    tier: web
spec:
  runStrategy: Always
  cpus: 2
  memory: 2Gi
  disks:
    - name: root
      volume: vol-{i}
      bus: virtio
  nics:
    - name: eth0
      network: net-{net}
  ha:
    enabled: true
    priority: {prio}
  placement:
    hostSelector:
      matchLabels:
        zone: z{z}
""",
    "AffinityGroup": """spec:
  vmSelector:
    matchLabels:
      app: app-{app}
  vmRule:
    polarity: negative
    enforcement: soft
""",
    "Snapshot": """spec:
  vm: vm-{vm}
  description: nightly
""",
}

# Out of every 100 objects: 40 VMs, 40 volumes, 5 hosts, 5 snapshots, 4 affinity groups,
# 2 networks, 2 pools, 2 templates.
MIX = (
    ["VirtualMachine"] * 40
    + ["Volume"] * 40
    + ["Host"] * 5
    + ["Snapshot"] * 5
    + ["AffinityGroup"] * 4
    + ["Network"] * 2
    + ["StoragePool"] * 2
    + ["Template"] * 2
)
PREFIX = {
    "VirtualMachine": "vm",
    "Volume": "vol",
    "Host": "host",
    "Snapshot": "snap",
    "AffinityGroup": "ag",
    "Network": "net",
    "StoragePool": "pool",
    "Template": "tpl",
}


def generate(directory: Path, objects: int) -> int:
    """Write `objects` manifests (plus a base volume and a policy); return the count."""
    counters = dict.fromkeys(PREFIX, 0)
    docs: list[str] = [
        HEAD.format(kind="SchedulingPolicy", name="default") + "spec:\n  hostSelector: {}\n",
        HEAD.format(kind="Volume", name="base") + "spec:\n  pool: pool-0\n  size: 2Gi\n"
        "  source:\n    path: /srv/images/base.qcow2\n",
    ]
    for n in range(objects - len(docs)):
        kind = MIX[n % len(MIX)]
        i = counters[kind]
        counters[kind] += 1
        values = {
            "i": i,
            "z": i % 4,
            "r": i % 250 + 1,
            "a": 100 + i // 250,
            "b": i % 250,
            "pool": i % max(1, counters["StoragePool"]),
            "app": i % 50,
            "net": i % max(1, counters["Network"]),
            "prio": i % 101,
            "vm": i % max(1, counters["VirtualMachine"]),
        }
        body = BODIES[kind].format(**values)
        docs.append(HEAD.format(kind=kind, name=f"{PREFIX[kind]}-{i}") + body)
    for start in range(0, len(docs), 100):
        name = directory / f"fleet-{start // 100:04d}.yaml"
        name.write_text("---\n".join(docs[start : start + 100]))
    return len(docs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs; the best is kept")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        count = generate(root, args.objects)
        size = sum(p.stat().st_size for p in root.iterdir())
        load_paths([root], root=root)  # warm up imports and caches
        walls, cpus = [], []
        for _ in range(args.repeat):
            start, start_cpu = time.perf_counter(), time.process_time()
            result = load_paths([root], root=root)
            walls.append(time.perf_counter() - start)
            cpus.append(time.process_time() - start_cpu)
        if result.errors:
            raise SystemExit(f"generated fleet has errors, first: {result.errors[0]}")
        tracemalloc.start()
        load_paths([root], root=root)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    best, best_cpu = min(walls), min(cpus)
    rate = count / best_cpu
    maxrss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"objects: {count} in {len(result.files)} files ({size / 2**20:.1f} MiB of YAML)")
    print(
        f"load+validate (best of {args.repeat}): {best_cpu:.3f} s CPU on one core, "
        f"{rate:,.0f} objects/s; wall {best:.3f} s, {count / best:,.0f} objects/s"
    )
    print(f"peak traced memory during a load: {peak / 2**20:.1f} MiB; max RSS {maxrss_mib:.0f} MiB")
    print(f"target 5,000 objects/s: {'met' if rate >= 5000 else 'NOT met'} ({rate / 5000:.2f}x)")


if __name__ == "__main__":
    main()
