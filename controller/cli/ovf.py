"""`corral export vm NAME --ovf DIR` and `corral import ovf DIR`: OVF 2.x in and out.

Export writes DIR/<vm>.ovf, one image per volume disk (qcow2 or raw, self-contained) and
DIR/<vm>.mf with their SHA256 sums. Import checks the descriptor and the sums, uploads
each disk into a new qcow2 volume "<vm>-<disk>" of `--pool` on `--host`, then writes the
VirtualMachine and Volume manifests (pinned to that host: a local pool's volumes are
there) into `--out` for the operator to commit or apply. An import that fails deletes
the volumes it made and writes no manifest.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
from ruamel.yaml import YAML

from controller.agentpool import AgentPool
from controller.agents import AgentClient, AgentClientError, AgentNotFound
from controller.cli.common import DbOption, StateDirOption, console, err_console, open_store_or_exit
from controller.ovf.envelope import OvfDisk, OvfError, OvfSystem, build_envelope, parse_envelope
from controller.ovf.transfer import ImageError, download_image, upload_image
from controller.plan.expand import expand
from controller.plan.model import Desired
from controller.store import NotFound, Store
from schemas.host import Host
from schemas.meta import format_bytes
from schemas.storagepool import StoragePool

export_app = typer.Typer(help="Export objects (OVF).", no_args_is_help=True)
CertsOpt = Annotated[
    Path | None, typer.Option("--certs", help="Controller client certs (corral certs controller)")
]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Directory for the manifests")]
EXTENSIONS = {"qcow2": "qcow2", "raw": "img"}


@export_app.callback()
def _export() -> None:
    """Export objects to other tools' formats (OVF)."""


class OvfCommandError(Exception):
    """An export or import that cannot go on; the message says what and where."""


def _bar() -> Progress:
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=console,
    )


def _host_client(store: Store, pool: AgentPool, host: str) -> AgentClient:
    try:
        found = store.get("Host", host).obj
    except NotFound:
        raise OvfCommandError(f"Host/{host} not found") from None
    assert isinstance(found, Host)
    return pool.client(host, found.spec.address)


def export_vm(store: Store, pool: AgentPool, vm: str, out: Path, fmt: str) -> Path:
    """Write the VM as an OVF package in `out`; return the descriptor's path."""
    stored = {(s.kind, s.name): s.obj for s in store.list().items}
    expanded = expand(Desired(objects=stored))
    if vm not in expanded.vms:
        problem = expanded.problems.get(("VirtualMachine", vm))
        raise OvfCommandError(problem[1] if problem else f"VirtualMachine/{vm} not found")
    desired = expanded.vms[vm]
    host = desired.resource.status.host if desired.resource.status else None
    if not host:
        raise OvfCommandError(f"VirtualMachine/{vm} is on no host (status.host unset)")
    client = _host_client(store, pool, host)
    out.mkdir(parents=True, exist_ok=True)
    spec = desired.spec
    disks: list[OvfDisk] = []
    with _bar() as bar:
        for disk in spec.disks:
            if not disk.volume:
                continue
            volume = expanded.volumes[disk.volume]
            image = out / f"{disk.name}.{EXTENSIONS[fmt]}"
            task = bar.add_task(f"{disk.volume} -> {image.name}", total=None)
            try:
                download_image(client, volume.pool, disk.volume, image, fmt,
                               lambda n, t=task: bar.update(t, completed=n))  # fmt: skip
            except (AgentClientError, ImageError) as exc:
                raise OvfCommandError(f"disk {disk.name} (Volume/{disk.volume}): {exc}") from exc
            disks.append(OvfDisk(disk.name, image.name, fmt, volume.size, image.stat().st_size))
    boot = spec.boot
    system = OvfSystem(
        name=vm,
        cpus=spec.cpus or 1,
        memory_bytes=spec.memory or 0,
        disks=disks,
        networks=[nic.network for nic in spec.nics],
        description=spec.description,
        kernel=boot.kernel if boot else None,
        initrd=boot.initrd if boot else None,
        cmdline=boot.cmdline if boot else None,
    )
    descriptor = out / f"{vm}.ovf"
    descriptor.write_text(build_envelope(system))
    sums = [f"SHA256({p.name})= {_sha256(p)}" for p in [descriptor, *(out / d.href for d in disks)]]
    (out / f"{vm}.mf").write_text("\n".join(sums) + "\n")
    return descriptor


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def read_package(directory: Path) -> tuple[OvfSystem, Path]:
    """Return the package's system and descriptor after checking files and sums."""
    descriptors = sorted(directory.glob("*.ovf"))
    if len(descriptors) != 1:
        raise OvfCommandError(
            f"{directory}: expected one .ovf descriptor, found {len(descriptors)}"
        )
    try:
        system = parse_envelope(descriptors[0].read_text())
    except OvfError as exc:
        raise OvfCommandError(f"{descriptors[0]}: {exc}") from exc
    for disk in system.disks:
        path = directory / disk.href
        if "/" in disk.href or not path.is_file():
            raise OvfCommandError(
                f"{descriptors[0]}: disk {disk.name}: file {disk.href} is missing"
            )
    manifest = descriptors[0].with_suffix(".mf")
    if manifest.exists():
        for line in manifest.read_text().splitlines():
            if not line.strip():
                continue
            name, _, want = line.partition(")= ")
            name = name.removeprefix("SHA256(")
            if (directory / name).is_file() and _sha256(directory / name) != want.strip():
                raise OvfCommandError(f"{manifest}: {name} does not match its SHA256 sum")
    return system, descriptors[0]


def choose_target(store: Store, pool: str | None, host: str | None) -> tuple[str, str]:
    """Return the (StoragePool, Host) an import goes to: as given, else the only pool and
    the first host its status lists; OvfCommandError when that is not decided."""
    pools = {s.name: s.obj for s in store.list("StoragePool").items}
    if pool is None:
        if len(pools) != 1:
            raise OvfCommandError(f"--pool: choose one of {', '.join(sorted(pools)) or '(none)'}")
        [pool] = pools
    if pool not in pools:
        raise OvfCommandError(f"--pool: StoragePool/{pool} not found")
    if host is None:
        found = pools[pool]
        assert isinstance(found, StoragePool)
        hosts = sorted(found.status.hosts) if found.status else []
        if not hosts:
            raise OvfCommandError(f"--host: StoragePool/{pool} is on no host yet; name one")
        host = hosts[0]
    return pool, host


def import_ovf(
    store: Store,
    pool: AgentPool,
    directory: Path,
    storage_pool: str,
    host: str,
    out: Path,
    name: str | None = None,
) -> Path:
    """Upload the package's disks into `storage_pool` on `host` and write the manifests
    (the VM named `name`, else as in the package); return the manifest file.

    A volume of the same name already there is never overwritten (OvfCommandError);
    on failure the volumes made so far are deleted.
    """
    system, _ = read_package(directory)
    if name:
        system = replace(system, name=name)
    client = _host_client(store, pool, host)
    for disk in system.disks:
        volume = f"{system.name}-{disk.name}"
        try:
            client.get_volume(storage_pool, volume)
        except AgentNotFound:
            continue
        except AgentClientError as exc:
            raise OvfCommandError(f"{host}: {exc}") from exc
        raise OvfCommandError(f"Volume {volume} already exists in {storage_pool} on {host}")
    made: list[str] = []
    try:
        with _bar() as bar:
            for disk in system.disks:
                volume = f"{system.name}-{disk.name}"
                task = bar.add_task(f"{disk.href} -> {volume}", total=None)
                made.append(volume)
                progress = lambda n, t=task: bar.update(t, completed=n)  # noqa: E731
                source = directory / disk.href
                upload_image(client, storage_pool, volume, source, disk.capacity_bytes, progress)
        documents = manifests_of(system, storage_pool, host, client)
    except (AgentClientError, ImageError, OvfCommandError) as exc:
        for volume in reversed(made):
            try:
                client.ensure_volume_deleted(storage_pool, volume)
            except AgentClientError as cleanup:
                err_console.print(f"[yellow]warning:[/] could not delete {volume}: {cleanup}")
        raise OvfCommandError(f"import of {system.name} failed, nothing kept: {exc}") from exc
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{system.name}.yaml"
    staging = target.with_name(f".{target.name}.tmp")
    yaml = YAML()
    with staging.open("w") as handle:
        yaml.dump_all(documents, handle)
    staging.replace(target)
    return target


def manifests_of(
    system: OvfSystem, storage_pool: str, host: str, client: AgentClient
) -> list[dict[str, Any]]:
    """Return the Volume and VirtualMachine manifests of an imported system."""
    documents: list[dict[str, Any]] = []
    disks = []
    for disk in system.disks:
        name = f"{system.name}-{disk.name}"
        size = client.get_volume(storage_pool, name).capacity_bytes
        documents.append(_object("Volume", name, {
            "pool": storage_pool, "size": format_bytes(size), "format": "qcow2"}))  # fmt: skip
        disks.append({"name": disk.name, "volume": name})
    spec: dict[str, Any] = {
        "cpus": system.cpus,
        "memory": format_bytes(system.memory_bytes),
        "disks": disks,
        "nics": [{"name": f"nic{i}", "network": n} for i, n in enumerate(system.networks)],
        "placement": {"host": host},
    }
    if system.kernel:
        spec["boot"] = {k: v for k, v in (("kernel", system.kernel), ("initrd", system.initrd),
                        ("cmdline", system.cmdline)) if v}  # fmt: skip
    if system.description:
        spec["description"] = system.description
    documents.append(_object("VirtualMachine", system.name, spec))
    return documents


def _object(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "corral.dev/v1alpha1", "kind": kind, "metadata": {"name": name},
            "spec": spec}  # fmt: skip


@export_app.command("vm")
def export_vm_command(
    name: Annotated[str, typer.Argument(help="VirtualMachine name (stop it first)")],
    ovf: Annotated[Path, typer.Option("--ovf", help="Directory to write the OVF package to")],
    disk_format: Annotated[str, typer.Option("--format", help="qcow2 or raw")] = "qcow2",
    certs: CertsOpt = None,
    db: DbOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Export a VM as an OVF 2.x package (descriptor, disk images, SHA256 manifest)."""
    if disk_format not in EXTENSIONS:
        err_console.print(f"[red]error:[/] --format: expected qcow2 or raw, got {disk_format!r}")
        raise typer.Exit(2)
    store = open_store_or_exit(db, state_dir)
    pool = AgentPool(cert_dir=certs, timeout_s=600.0)
    try:
        descriptor = export_vm(store, pool, name, ovf, disk_format)
    except OvfCommandError as exc:
        err_console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    finally:
        pool.close()
        store.close()
    console.print(f"wrote {descriptor}")


def import_ovf_command(
    directory: Annotated[Path, typer.Argument(help="Directory holding the OVF package")],
    pool_name: Annotated[
        str | None, typer.Option("--pool", help="StoragePool for the disks (default: the only one)")
    ] = None,
    host: Annotated[
        str | None,
        typer.Option("--host", help="Host to upload the disks to (default: one the pool is on)"),
    ] = None,
    out: OutOpt = Path("."),
    name: Annotated[str | None, typer.Option("--name", help="VM name (default: the OVF's)")] = None,
    certs: CertsOpt = None,
    db: DbOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Import an OVF package: disks into volumes, manifests into --out."""
    store = open_store_or_exit(db, state_dir)
    pool = AgentPool(cert_dir=certs, timeout_s=600.0)
    try:
        pool_name, host = choose_target(store, pool_name, host)
        target = import_ovf(store, pool, directory, pool_name, host, out, name)
    except OvfCommandError as exc:
        err_console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    finally:
        pool.close()
        store.close()
    console.print(f"wrote {target}; apply it (or commit it to your fleet repository)")


def register(app: typer.Typer) -> None:
    """Adds the `export` command group to the corral app (`import ovf` joins `import`)."""
    app.add_typer(export_app, name="export")
