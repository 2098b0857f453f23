"""Store benchmark: apply a 10,000-object snapshot, re-apply it unchanged, change one, list all.

Runs on SQLite (a temp file) and on PostgreSQL (a fresh schema in database `test` at
127.0.0.1:5432, or CORRAL_BENCH_PG_URL; skipped with a note when unreachable).

    python bench/bench_store.py [--objects 10000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controller.store import Store, open_store
from schemas import VirtualMachine

PG_URL = os.environ.get("CORRAL_BENCH_PG_URL", "postgresql://127.0.0.1:5432/test")
SOURCE = "git:bench"


def make_vms(count: int, memory_of: Callable[[int], str] = lambda i: "1Gi") -> list[VirtualMachine]:
    """Return `count` realistic VMs: labels, disks, NICs, HA and placement."""
    return [
        VirtualMachine.model_validate(
            {
                "kind": "VirtualMachine",
                "metadata": {
                    "name": f"vm-{i:05d}",
                    "labels": {"tier": ("web", "db", "batch")[i % 3], "zone": f"z{i % 4}"},
                },
                "spec": {
                    "cpus": 1 + i % 4,
                    "memory": memory_of(i),
                    "disks": [{"name": "root", "volume": f"vm-{i:05d}-root"}],
                    "nics": [{"name": "eth0", "network": "lan"}],
                    "ha": {"enabled": i % 2 == 0, "priority": i % 100},
                    "placement": {"hostSelector": {"matchLabels": {"zone": f"z{i % 4}"}}},
                },
            }
        )
        for i in range(count)
    ]


def timed(label: str, fn: Callable[[], Any]) -> Any:
    """Run fn; print its wall time and this process's CPU time (the latter shrugs off load)."""
    start, cpu_start = time.perf_counter(), time.process_time()
    result = fn()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    print(f"  {label:<44} {wall * 1000:9.1f} ms wall {cpu * 1000:9.1f} ms cpu")
    return result


def run(store: Store, count: int) -> None:
    vms = make_vms(count)
    changed = make_vms(count, lambda i: "2Gi" if i == count // 2 else "1Gi")
    print(f"{store.dialect}: {count} objects")
    first = timed(f"apply {count} new objects", lambda: store.apply_snapshot(SOURCE, "r1", vms))
    assert len(first.created) == count
    again = timed("re-apply unchanged (no-op)", lambda: store.apply_snapshot(SOURCE, "r2", vms))
    assert not again.changed and len(again.unchanged) == count
    one = timed(
        "re-apply with one object changed", lambda: store.apply_snapshot(SOURCE, "r3", changed)
    )
    assert len(one.updated) == 1
    page = timed("list all (decoded to models)", lambda: store.list())
    assert len(page.items) == count
    selected = timed(
        "list tier=web (label selector)", lambda: store.list(label_selector="tier=web")
    )
    print(f"  {'':<44} {len(selected.items)} matched")
    timed("get one", lambda: store.get("VirtualMachine", f"vm-{count // 3:05d}"))
    wrote = timed(
        "put_status x100, then the same again (no-op)",
        lambda: [
            store.put_status("VirtualMachine", f"vm-{i:05d}", {"phase": "Running"})
            for _ in range(2)
            for i in range(100)
        ],
    )
    assert sum(wrote) == 100
    pruned = timed(
        "prune half (apply the other half)",
        lambda: store.apply_snapshot(SOURCE, "r4", changed[: count // 2], prune=True),
    )
    assert len(pruned.deleted) == count - count // 2
    print(f"  change log: {store.revision()} changes")


@contextmanager
def pg_schema() -> Iterator[str | None]:
    libpq = make_url(PG_URL).set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        admin = psycopg.connect(libpq, autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        print(f"postgresql: skipped, unreachable at {PG_URL}: {exc}")
        yield None
        return
    schema = f"corral_bench_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        admin.close()


def main() -> None:
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{tmp}/corral.db")
        try:
            run(store, args.objects)
        finally:
            store.close()
    with pg_schema() as url:
        if url is not None:
            store = open_store(url)
            try:
                run(store, args.objects)
            finally:
                store.close()


if __name__ == "__main__":
    main()
