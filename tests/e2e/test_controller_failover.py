"""Controller HA: two `corral controller` processes on PostgreSQL, one real agent.

The agent runs on libvirt's test driver (its domains are in memory, no QEMU), so what
is measured is the controllers' election and failover, not guest boot. The leader is
killed with SIGKILL (no release: the standby must wait out the lease), then a
frozen leader (SIGSTOP) is deposed and woken: its store writes and its mutating agent
calls (under its old term) must be refused. Figures are printed (`pytest -s`); timings
are not asserted beyond generous deadlines.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from controller.agents import AgentClient, AgentConflict
from controller.store import Fenced, Store, open_store
from controller.store.fencing import holder_hash
from schemas.kinds import KINDS
from tests.e2e.e2ekit import AgentProcess
from tests.helpers.replicas import (
    VM_MANIFEST,
    ControllerProcess,
    one_host_fleet,
    test_driver_agent,
)

__all__ = ["test_driver_agent"]  # a fixture used by this module

pytestmark = pytest.mark.postgres

LEASE_TTL_S = 2.0
DEADLINE_S = 90.0


def wait_for(what: str, check: Callable[[], bool], replicas: list[ControllerProcess]) -> float:
    """Poll `check` every 20 ms; return seconds until it held, or fail naming `what`."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > DEADLINE_S:
            logs = "\n".join(f"--- {r.identity}\n{r.output()[-3000:]}" for r in replicas)
            pytest.fail(f"{what}: not after {DEADLINE_S:.0f} s\n{logs}")
        time.sleep(0.02)
    return time.monotonic() - start


def running(client: AgentClient, vm: str) -> bool:
    return any(d.name == vm and d.state == "running" for d in client.get_state().domains)


def leads(store: Store, identity: str, epoch: int) -> Callable[[], bool]:
    def check() -> bool:
        term = store.leader_term()
        return term.holder == holder_hash(identity) and term.epoch == epoch

    return check


def test_standby_takes_over_a_killed_leader_and_a_deposed_leader_is_fenced(
    pg_schema_url: str, test_driver_agent: AgentProcess, tmp_path: Path
) -> None:
    agent = test_driver_agent
    manifests = one_host_fleet(tmp_path, agent.address)
    client = AgentClient(agent.address)
    store = open_store(pg_schema_url)
    replicas: list[ControllerProcess] = []
    try:
        replicas.append(
            a := ControllerProcess("ctl-a", manifests, pg_schema_url, tmp_path, LEASE_TTL_S)
        )
        wait_for("ctl-a leads in term 1", leads(store, "ctl-a", 1), replicas)
        wait_for("vm-a running", lambda: running(client, "vm-a"), replicas)
        replicas.append(
            b := ControllerProcess("ctl-b", manifests, pg_schema_url, tmp_path, LEASE_TTL_S)
        )
        wait_for("ctl-b stands by", lambda: "standing by" in b.output(), replicas)
        time.sleep(2 * LEASE_TTL_S)
        assert leads(store, "ctl-a", 1)(), "the standby took the lead from a live leader"

        # 1. the leader dies without a word; the standby waits out the lease and leads
        a.process.kill()
        a.process.wait()
        (manifests / "vm-b.yaml").write_text(VM_MANIFEST.format(name="vm-b"))
        killed = time.monotonic()
        lead_s = wait_for("ctl-b leads in term 2", leads(store, "ctl-b", 2), replicas)
        wait_for("vm-b running", lambda: running(client, "vm-b"), replicas)
        work_s = time.monotonic() - killed
        # vm-b was defined and started under term 2: the agent keeps the newest term seen.
        assert client.get_lease().term == 2
        print(
            f"\nfailover after SIGKILL (lease {LEASE_TTL_S:g} s): standby leads in {lead_s:.2f} s,"
            f" first new VM running in {work_s:.2f} s (agent's term: 2)"
        )

        # 2. a frozen leader is deposed; woken, it must change nothing
        replicas.append(
            c := ControllerProcess("ctl-c", manifests, pg_schema_url, tmp_path, LEASE_TTL_S)
        )
        wait_for("ctl-c stands by", lambda: "standing by" in c.output(), replicas)
        os.kill(b.process.pid, signal.SIGSTOP)
        frozen = time.monotonic()
        takeover_s = wait_for("ctl-c leads in term 3", leads(store, "ctl-c", 3), replicas)
        (manifests / "vm-c.yaml").write_text(VM_MANIFEST.format(name="vm-c"))
        wait_for("vm-c running", lambda: running(client, "vm-c"), replicas)
        assert client.get_lease().term == 3  # vm-c was started under term 3
        os.kill(b.process.pid, signal.SIGCONT)
        wait_for("ctl-b stands by again", lambda: "term 2 over" in b.output(), replicas)
        time.sleep(LEASE_TTL_S)
        assert leads(store, "ctl-c", 3)()
        assert client.get_lease().term == 3
        # What a call of the woken leader meets at the agent: its term is refused.
        with (
            AgentClient(agent.address, epoch=lambda: 2) as deposed,
            pytest.raises(AgentConflict, match="controller term 2 is older than term 3"),
        ):
            deposed.ensure_network_active("default")
        print(
            f"frozen leader deposed: ctl-c leads {takeover_s:.2f} s after SIGSTOP; ctl-b woken,"
            f" back to standby, agent's term still 3 ({time.monotonic() - frozen:.1f} s)"
        )

        # a write carrying the deposed term's token is refused and changes nothing
        late = open_store(pg_schema_url)
        try:
            late.set_fencing_token(2)
            vm = KINDS["VirtualMachine"].model_validate(
                {
                    "kind": "VirtualMachine",
                    "metadata": {"name": "late"},
                    "spec": {"cpus": 1, "memory": "128Mi"},
                }
            )
            with pytest.raises(Fenced) as caught:
                late.put(vm, source="api:late")
            assert (caught.value.token, caught.value.current) == (2, 3)
        finally:
            late.close()
        assert "late" not in {o.name for o in store.list(kind="VirtualMachine").items}
    finally:
        for replica in replicas:
            replica.end()
        store.close()
