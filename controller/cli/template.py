"""`corral template create NAME --from-vm VM`: a Template (and its base volumes) from a
stopped VM.

Each writable volume disk of the VM is copied, flattened, into a new base volume
"<NAME>-<disk>" in the same pool through the VM's host agent; read-only volume disks
and CD-ROMs stay shared references. The Template manifest (the VM's settings without
placement and MAC addresses, disks on the base volumes) and the base volumes' Volume
manifests go to stdout, or to OUT/<NAME>.yaml with -o. A creation that fails deletes the
base volumes it made and writes nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from ruamel.yaml import YAML

from controller.agentpool import AgentPool
from controller.agents import AgentClientError, AgentNotFound
from controller.cli.common import DbOption, StateDirOption, console, err_console, open_store_or_exit
from controller.cli.volume import VolumeCommandError, VolumeRef, copy
from controller.plan.expand import expand
from controller.plan.model import Desired
from controller.store import NotFound, Store
from schemas.host import Host
from schemas.meta import format_bytes
from schemas.template import TemplateSpec
from schemas.vm import VirtualMachineFields

template_app = typer.Typer(help="Make Templates.", no_args_is_help=True)
API_VERSION = "corral.dev/v1alpha1"
DROPPED = ("placement",)
"""VM settings a template must not hand on: every VM would be pinned to one host."""


class TemplateCommandError(Exception):
    """A template that cannot be made; the message says which object and why."""


def base_volume_name(template: str, disk: str) -> str:
    """Return the name of the base volume a template disk gets."""
    return f"{template}-{disk}"


def create_from_vm(store: Store, agents: AgentPool, name: str, vm: str) -> list[dict[str, Any]]:
    """Copy the stopped VM's disks into base volumes; return the Volume and Template
    manifests (Template last). TemplateCommandError when the VM is not stopped, unknown
    or on no host; on a failed copy the base volumes made so far are deleted."""
    stored = {(s.kind, s.name): s.obj for s in store.list().items}
    if ("Template", name) in stored:
        raise TemplateCommandError(f"Template/{name} already exists")
    expanded = expand(Desired(objects=stored))
    desired = expanded.vms.get(vm)
    if desired is None:
        problem = expanded.problems.get(("VirtualMachine", vm))
        raise TemplateCommandError(problem[1] if problem else f"VirtualMachine/{vm} not found")
    host = desired.resource.status.host if desired.resource.status else None
    if not host:
        raise TemplateCommandError(f"VirtualMachine/{vm} is on no host (status.host unset)")
    try:
        address = store.get("Host", host).obj
    except NotFound:
        raise TemplateCommandError(f"Host/{host} of VirtualMachine/{vm} not found") from None
    assert isinstance(address, Host)
    client = agents.client(host, address.spec.address)
    try:
        state = client.get_domain(vm).state
    except AgentNotFound:
        raise TemplateCommandError(f"VirtualMachine/{vm} is not defined on {host}") from None
    except AgentClientError as exc:
        raise TemplateCommandError(f"{host}: {exc}") from exc
    if state != "shutoff":
        raise TemplateCommandError(
            f"VirtualMachine/{vm} is {state} on {host}; stop it first (runStrategy: Halted)"
        )
    documents: list[dict[str, Any]] = []
    bases: dict[str, str] = {}
    made: list[VolumeRef] = []
    try:
        for disk in desired.spec.disks:
            if not disk.volume or disk.readonly:
                continue
            pool = expanded.volumes[disk.volume].pool
            source = VolumeRef(pool, disk.volume, host, client)
            target = VolumeRef(pool, base_volume_name(name, disk.name), host, client)
            copy(source, target)
            made.append(target)
            capacity = client.get_volume(pool, target.name).capacity_bytes
            bases[disk.name] = target.name
            documents.append(_manifest("Volume", target.name, {
                "pool": pool, "size": format_bytes(capacity), "format": "qcow2"}))  # fmt: skip
    except (VolumeCommandError, AgentClientError) as exc:
        for ref in reversed(made):
            try:
                client.ensure_volume_deleted(ref.pool, ref.name)
            except AgentClientError as cleanup:
                err_console.print(f"[yellow]warning:[/] could not delete {ref}: {cleanup}")
        raise TemplateCommandError(
            f"Template/{name} from {vm} failed, nothing kept: {exc}"
        ) from exc
    documents.append(_manifest("Template", name, template_spec(desired.spec, bases)))
    return documents


def template_spec(spec: VirtualMachineFields, bases: dict[str, str]) -> dict[str, Any]:
    """Return the Template spec (manifest form) of a VM's settings, its disks named in
    `bases` (disk -> base volume) pointing at their base volumes."""
    fields = {f.alias or n for n, f in VirtualMachineFields.model_fields.items()}
    dumped = spec.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=True)
    out = {k: v for k, v in dumped.items() if k in fields and k not in DROPPED}
    for nic in out.get("nics", []):
        nic.pop("mac", None)
    for disk in out.get("disks", []):
        if disk["name"] in bases:
            disk["volume"] = bases[disk["name"]]
    TemplateSpec.model_validate(out)
    return out


def _manifest(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name}, "spec": spec}


@template_app.command("create")
def create_command(
    name: Annotated[str, typer.Argument(help="Template name")],
    from_vm: Annotated[str, typer.Option("--from-vm", help="Stopped VirtualMachine to copy")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Directory for NAME.yaml (default: stdout)")
    ] = None,
    certs: Annotated[
        Path | None,
        typer.Option("--certs", help="Controller client certs (corral certs controller)"),
    ] = None,
    db: DbOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Make a Template and its base volumes from a stopped VM; print or write the manifests."""
    store = open_store_or_exit(db, state_dir)
    agents = AgentPool(cert_dir=certs, timeout_s=600.0)
    try:
        documents = create_from_vm(store, agents, name, from_vm)
    except TemplateCommandError as exc:
        err_console.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    finally:
        agents.close()
        store.close()
    yaml = YAML()
    if out is None:
        yaml.dump_all(documents, sys.stdout)
        return
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{name}.yaml"
    staging = target.with_name(f".{target.name}.tmp")
    with staging.open("w") as handle:
        yaml.dump_all(documents, handle)
    staging.replace(target)
    console.print(f"wrote {target}; commit it to your fleet repository (or apply it)")


def register(app: typer.Typer) -> None:
    """Adds the `template` command group to the corral app."""
    app.add_typer(template_app, name="template")
