"""`corral vm revert NAME SNAPSHOT` and `corral vm snapshots NAME`: snapshots on request.

A revert is never planned: manifests declare which snapshots exist, not which one a VM
runs from, so the controller never reverts by itself. An operator asks for it here, and
the command calls the VM's host agent at once (the host the VM's status names), after
checking there that the snapshot exists; the revert is recorded as an event on the VM.
A VM reverted to a snapshot taken while it was stopped comes back stopped; its run
strategy then decides (Always starts it again on the next pass).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from agentapi import SnapshotState, VerbResult
from controller.agentpool import AgentPool
from controller.agents import AgentClientError, AgentNotFound
from controller.cli.common import DbOption, StateDirOption, console, err_console, open_store_or_exit
from controller.scheduler.text import human_bytes
from controller.store import NotFound, Store
from schemas.host import Host
from schemas.vm import VirtualMachine

REVERTED = "Reverted"
"""An operator reverted the VM to a snapshot (corral vm revert)."""

vm_app = typer.Typer(help="VM operations on request: snapshots and reverts.", no_args_is_help=True)

CertsOpt = Annotated[
    Path | None, typer.Option("--certs", help="Controller client certs (corral certs controller)")
]


class VMOperationError(Exception):
    """A VM operation cannot be done; the message says why and what to do."""

    def __init__(self, vm: str, message: str) -> None:
        super().__init__(message)
        self.vm = vm


def vm_host(store: Store, vm: str) -> Host:
    """Return the Host the VM's status places it on; VMOperationError when there is none."""
    try:
        obj = store.get("VirtualMachine", vm).obj
    except NotFound:
        raise VMOperationError(vm, f"VirtualMachine/{vm} not found") from None
    assert isinstance(obj, VirtualMachine)
    host = obj.status.host if obj.status else None
    if not host:
        raise VMOperationError(vm, f"VirtualMachine/{vm} is on no host yet (status.host unset)")
    try:
        found = store.get("Host", host).obj
    except NotFound:
        raise VMOperationError(vm, f"VirtualMachine/{vm} is on Host/{host}, not defined") from None
    assert isinstance(found, Host)
    return found


def list_vm_snapshots(store: Store, pool: AgentPool, vm: str) -> list[SnapshotState]:
    """Return the VM's snapshots as its host agent reports them, oldest first."""
    host = vm_host(store, vm)
    try:
        return pool.client(host.metadata.name, host.spec.address).list_snapshots(vm)
    except AgentClientError as exc:
        raise VMOperationError(vm, f"Host/{host.metadata.name}: {exc}") from exc


def revert_vm(store: Store, pool: AgentPool, vm: str, snapshot: str) -> VerbResult:
    """Revert the VM to `snapshot` on its host now; return the agent's answer.

    Raises VMOperationError when the VM, its host or the snapshot is missing, or the
    agent refuses (the message names which).
    """
    host = vm_host(store, vm)
    name = host.metadata.name
    client = pool.client(name, host.spec.address)
    try:
        taken = client.get_snapshot(vm, snapshot)
        result = client.revert_snapshot(vm, snapshot)
    except AgentNotFound as exc:
        raise VMOperationError(
            vm, f"VirtualMachine/{vm} has no snapshot {snapshot!r} on {name}: {exc}"
        ) from exc
    except AgentClientError as exc:
        raise VMOperationError(vm, f"reverting {vm} to {snapshot} on {name}: {exc}") from exc
    when = datetime.fromtimestamp(taken.created_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    store.record_event(
        "VirtualMachine",
        vm,
        "Normal",
        REVERTED,
        f"Reverted to snapshot {snapshot} (taken {when}, {taken.domain_state}) on {name} "
        "on an operator's request",
        component="cli",
    )
    return result


@vm_app.command("revert")
def revert(
    name: Annotated[str, typer.Argument(help="VirtualMachine name")],
    snapshot: Annotated[str, typer.Argument(help="Snapshot name")],
    certs: CertsOpt = None,
    db: DbOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Revert a VM to one of its snapshots now (its disks, and its memory if saved)."""
    store = open_store_or_exit(db, state_dir)
    pool = AgentPool(cert_dir=certs, timeout_s=300.0)
    try:
        result = revert_vm(store, pool, name, snapshot)
    except VMOperationError as exc:
        err_console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    finally:
        pool.close()
        store.close()
    console.print(f"VirtualMachine/{name}: reverted to {snapshot} (now {result.state})")


@vm_app.command("snapshots")
def snapshots(
    name: Annotated[str, typer.Argument(help="VirtualMachine name")],
    certs: CertsOpt = None,
    db: DbOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """List a VM's snapshots as its host reports them: time, state, memory, size."""
    store = open_store_or_exit(db, state_dir)
    pool = AgentPool(cert_dir=certs)
    try:
        found = list_vm_snapshots(store, pool, name)
    except VMOperationError as exc:
        err_console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    finally:
        pool.close()
        store.close()
    table = Table("NAME", "TAKEN", "STATE", "MEMORY", "SIZE", "CURRENT", "DESCRIPTION")
    for snap in found:
        table.add_row(
            snap.name,
            datetime.fromtimestamp(snap.created_at, UTC).strftime("%Y-%m-%d %H:%M:%S"),
            snap.domain_state,
            "yes" if snap.memory else "no",
            human_bytes(snap.size_bytes) if snap.size_bytes is not None else "-",
            "*" if snap.current else "",
            snap.description or "",
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    """Adds the `vm` command group to the corral app."""
    app.add_typer(vm_app, name="vm")
