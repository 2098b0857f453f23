"""`corral volume upload|download|resize|copy`: volume images through the host agents.

A volume is named POOL/VOLUME; the host whose agent serves it is `--host`, else the
first host the StoragePool's status lists. Upload converts the file to qcow2 and creates
the volume if missing (never shrinking one that exists); download writes a standalone
image (a thin clone's backing chain flattened); resize only grows; copy is a download
and an upload, into a volume that must not exist yet. Transfers show progress bars.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from controller.agentpool import AgentPool
from controller.agents import AgentClient, AgentClientError, AgentNotFound
from controller.cli.common import DbOption, StateDirOption, console, err_console, open_store_or_exit
from controller.ovf.transfer import ImageError, download_image, image_info, upload_image
from controller.store import NotFound, Store
from nodeagent.models import VolumeSpec
from schemas.host import Host
from schemas.meta import format_bytes, parse_bytes
from schemas.storagepool import StoragePool

volume_app = typer.Typer(help="Move volume images through the host agents.", no_args_is_help=True)
HostOpt = Annotated[
    str | None, typer.Option("--host", help="Host serving the pool (default: one it is on)")
]
CertsOpt = Annotated[
    Path | None, typer.Option("--certs", help="Controller client certs (corral certs controller)")
]
FORMATS = ("qcow2", "raw")


class VolumeCommandError(Exception):
    """A volume command that cannot go on; the message names the volume and the cause."""


@dataclass(frozen=True)
class VolumeRef:
    """POOL/VOLUME on the host whose agent serves it."""

    pool: str
    name: str
    host: str
    client: AgentClient

    def __str__(self) -> str:
        return f"{self.pool}/{self.name} on {self.host}"


def split_ref(text: str) -> tuple[str, str]:
    """Return (pool, volume) of "POOL/VOLUME"; VolumeCommandError when it is not that."""
    pool, sep, name = text.partition("/")
    if not sep or not pool or not name or "/" in name:
        raise VolumeCommandError(f"expected POOL/VOLUME, got {text!r}")
    return pool, name


def resolve(store: Store, agents: AgentPool, text: str, host: str | None) -> VolumeRef:
    """Return the volume reference with its agent client (host from --host or the pool)."""
    pool, name = split_ref(text)
    if host is None:
        try:
            found = store.get("StoragePool", pool).obj
        except NotFound:
            raise VolumeCommandError(f"StoragePool/{pool} not found; name a --host") from None
        assert isinstance(found, StoragePool)
        hosts = sorted(found.status.hosts) if found.status else []
        if not hosts:
            raise VolumeCommandError(f"StoragePool/{pool} is on no host yet; name a --host")
        host = hosts[0]
    try:
        stored = store.get("Host", host).obj
    except NotFound:
        raise VolumeCommandError(f"Host/{host} not found") from None
    assert isinstance(stored, Host)
    return VolumeRef(pool, name, host, agents.client(host, stored.spec.address))


def _bar() -> Progress:
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=console,
    )


def _exists(ref: VolumeRef) -> bool:
    try:
        ref.client.get_volume(ref.pool, ref.name)
    except AgentNotFound:
        return False
    return True


def upload(ref: VolumeRef, source: Path) -> None:
    """Fill the volume with the image at `source` (any format qemu-img reads), creating
    it as qcow2 of the image's virtual size if it does not exist."""
    if not source.is_file():
        raise VolumeCommandError(f"{source}: no such file")
    try:
        virtual = int(image_info(source)["virtual-size"])
        with _bar() as bar:
            task = bar.add_task(f"{source.name} -> {ref.pool}/{ref.name}", total=None)
            upload_image(ref.client, ref.pool, ref.name, source, virtual,
                         lambda n: bar.update(task, completed=n))  # fmt: skip
    except (AgentClientError, ImageError) as exc:
        raise VolumeCommandError(f"upload to {ref}: {exc}") from exc


def download(ref: VolumeRef, dest: Path, fmt: str) -> None:
    """Write the volume as a standalone `fmt` image at `dest`."""
    if fmt not in FORMATS:
        raise VolumeCommandError(f"--format: expected qcow2 or raw, got {fmt!r}")
    try:
        state = ref.client.get_volume(ref.pool, ref.name)
        with _bar() as bar:
            task = bar.add_task(f"{ref.pool}/{ref.name} -> {dest.name}", total=None)
            bar.update(task, total=state.allocation_bytes or None)
            download_image(ref.client, ref.pool, ref.name, dest, fmt,
                           lambda n: bar.update(task, completed=n))  # fmt: skip
    except (AgentClientError, ImageError) as exc:
        raise VolumeCommandError(f"download of {ref}: {exc}") from exc


def resize(ref: VolumeRef, size: int) -> bool:
    """Grow the volume to `size` bytes; return False when it is that size already.

    A smaller size is refused (shrinking loses data)."""
    try:
        state = ref.client.get_volume(ref.pool, ref.name)
        if size < state.capacity_bytes:
            raise VolumeCommandError(
                f"{ref}: size {format_bytes(size)} is below its capacity "
                f"{format_bytes(state.capacity_bytes)}; volumes only grow"
            )
        if size == state.capacity_bytes:
            return False
        fmt = "raw" if state.format == "raw" else "qcow2"
        spec = VolumeSpec(name=ref.name, capacity_bytes=size, format=fmt,
                          backing_path=state.backing_path,
                          backing_format=state.backing_format)  # fmt: skip
        return ref.client.ensure_volume(ref.pool, spec).changed
    except AgentClientError as exc:
        raise VolumeCommandError(f"resize of {ref}: {exc}") from exc


def copy(source: VolumeRef, target: VolumeRef) -> None:
    """Copy a volume into a new one (another pool, host or name): download, then upload.

    The target must not exist; a copy that fails halfway deletes the target."""
    if _exists(target):
        raise VolumeCommandError(f"{target} already exists; copy only makes new volumes")
    with tempfile.TemporaryDirectory(prefix="corral-volume-") as tmp:
        image = Path(tmp) / f"{source.name}.qcow2"
        download(source, image, "qcow2")
        try:
            upload(target, image)
        except VolumeCommandError:
            try:
                target.client.ensure_volume_deleted(target.pool, target.name)
            except AgentClientError as cleanup:
                err_console.print(f"[yellow]warning:[/] could not delete {target}: {cleanup}")
            raise


def _run(
    certs: Path | None,
    db: str | None,
    state_dir: Path | None,
    work: Callable[[Store, AgentPool], str],
) -> None:
    store = open_store_or_exit(db, state_dir)
    agents = AgentPool(cert_dir=certs, timeout_s=600.0)
    try:
        message = work(store, agents)
    except VolumeCommandError as exc:
        err_console.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    finally:
        agents.close()
        store.close()
    console.print(message, highlight=False, soft_wrap=True)


@volume_app.command("upload")
def upload_command(
    volume: Annotated[str, typer.Argument(help="POOL/VOLUME")],
    file: Annotated[Path, typer.Argument(help="Image file (qcow2, raw, vmdk, ...)")],
    host: HostOpt = None,
    certs: CertsOpt = None,
    db: DbOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Upload an image file into a volume (created as qcow2 if missing)."""

    def work(store: Store, agents: AgentPool) -> str:
        ref = resolve(store, agents, volume, host)
        upload(ref, file)
        return f"uploaded {file} to {ref}"

    _run(certs, db, state_dir, work)


@volume_app.command("download")
def download_command(
    volume: Annotated[str, typer.Argument(help="POOL/VOLUME")],
    file: Annotated[Path, typer.Argument(help="Image file to write")],
    disk_format: Annotated[str, typer.Option("--format", help="qcow2 or raw")] = "qcow2",
    host: HostOpt = None,
    certs: CertsOpt = None,
    db: DbOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Download a volume into a standalone image file."""

    def work(store: Store, agents: AgentPool) -> str:
        ref = resolve(store, agents, volume, host)
        download(ref, file, disk_format)
        return f"wrote {file} ({disk_format}) from {ref}"

    _run(certs, db, state_dir, work)


@volume_app.command("resize")
def resize_command(
    volume: Annotated[str, typer.Argument(help="POOL/VOLUME")],
    size: Annotated[str, typer.Argument(help="New size, e.g. 20Gi (grow only)")],
    host: HostOpt = None,
    certs: CertsOpt = None,
    db: DbOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Grow a volume (raise its manifest's size too: the manifest stays the truth)."""

    def work(store: Store, agents: AgentPool) -> str:
        try:
            wanted = parse_bytes(size)
        except ValueError as exc:
            raise VolumeCommandError(f"size: {exc}") from None
        ref = resolve(store, agents, volume, host)
        grown = resize(ref, wanted)
        return f"{ref}: {'grown to' if grown else 'already'} {format_bytes(wanted)}"

    _run(certs, db, state_dir, work)


@volume_app.command("copy")
def copy_command(
    source: Annotated[str, typer.Argument(help="POOL/VOLUME to copy")],
    target: Annotated[str, typer.Argument(help="POOL/VOLUME to make (must not exist)")],
    host: HostOpt = None,
    to_host: Annotated[
        str | None, typer.Option("--to-host", help="Host serving the target pool")
    ] = None,
    certs: CertsOpt = None,
    db: DbOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Copy a volume into a new volume, in another pool or on another host."""

    def work(store: Store, agents: AgentPool) -> str:
        src = resolve(store, agents, source, host)
        dst = resolve(store, agents, target, to_host)
        copy(src, dst)
        return f"copied {src} to {dst}"

    _run(certs, db, state_dir, work)


def register(app: typer.Typer) -> None:
    """Adds the `volume` command group to the corral app."""
    app.add_typer(volume_app, name="volume")
