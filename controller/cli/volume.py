"""`corral volume upload|download|resize|copy`: volume images through the host agents.

A volume is named POOL/VOLUME; the host whose agent serves it is `--host`, else the
first host the StoragePool's status lists. Upload converts the file to qcow2 and creates
the volume if missing (never shrinking one that exists); download writes a standalone
image (a thin clone's backing chain flattened); resize only grows; copy is a download
and an upload, into a volume that must not exist yet. Transfers show progress bars.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from agentapi import VolumeSpec
from controller.agentpool import AgentPool
from controller.agents import AgentClient, AgentClientError, AgentNotFound
from controller.cli.common import DbOption, StateDirOption, console, err_console, open_store_or_exit
from controller.cli.signature import declare_options, keyword
from controller.ovf.transfer import ImageError, download_image, image_info, upload_image
from controller.store import NotFound, Store
from schemas.host import Host
from schemas.meta import format_bytes, parse_bytes
from schemas.storagepool import StoragePool

volume_app = typer.Typer(help="Move volume images through the host agents.", no_args_is_help=True)
VolumeArg = Annotated[str, typer.Argument(help="POOL/VOLUME")]
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


@contextmanager
def _progress(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """Yield a callback that moves a progress bar to the bytes done so far."""
    with _bar() as bar:
        task = bar.add_task(description, total=total)
        yield lambda done: bar.update(task, completed=done)


@contextmanager
def _failing_as(what: str, *errors: type[Exception]) -> Iterator[None]:
    """Raise `errors` met inside as VolumeCommandError("<what>: <error>")."""
    try:
        yield
    except errors as exc:
        raise VolumeCommandError(f"{what}: {exc}") from exc


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
    with _failing_as(f"upload to {ref}", AgentClientError, ImageError):
        virtual = int(image_info(source)["virtual-size"])
        with _progress(f"{source.name} -> {ref.pool}/{ref.name}", None) as moved:
            upload_image(ref.client, ref.pool, ref.name, source, virtual, moved)


def download(ref: VolumeRef, dest: Path, fmt: str) -> None:
    """Write the volume as a standalone `fmt` image at `dest`."""
    if fmt not in FORMATS:
        raise VolumeCommandError(f"--format: expected qcow2 or raw, got {fmt!r}")
    with _failing_as(f"download of {ref}", AgentClientError, ImageError):
        state = ref.client.get_volume(ref.pool, ref.name)
        total = state.allocation_bytes or None
        with _progress(f"{ref.pool}/{ref.name} -> {dest.name}", total) as moved:
            download_image(ref.client, ref.pool, ref.name, dest, fmt, moved)


def resize(ref: VolumeRef, size: int) -> bool:
    """Grow the volume to `size` bytes; return False when it is that size already.

    A smaller size is refused (shrinking loses data)."""
    with _failing_as(f"resize of {ref}", AgentClientError):
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


STORE_OPTIONS = (
    keyword("certs", CertsOpt, None),
    keyword("db", DbOption, None),
    keyword("state_dir", StateDirOption, None),
)


def _volume_command(name: str) -> Callable[[Callable[..., str]], Callable[..., None]]:
    """Return a decorator registering `corral volume NAME` from a function that takes the
    store and the agents first and returns what it did.

    The command gains --certs, --db and --state-dir; a VolumeCommandError exits 1.
    """

    def decorate(command: Callable[..., str]) -> Callable[..., None]:
        @functools.wraps(command)
        def run(*, certs: Path | None, db: str | None, state_dir: Path | None, **kw: Any) -> None:
            store = open_store_or_exit(db, state_dir)
            agents = AgentPool(cert_dir=certs, timeout_s=600.0)
            try:
                message = command(store, agents, **kw)
            except VolumeCommandError as exc:
                err_console.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
                raise typer.Exit(1) from None
            finally:
                agents.close()
                store.close()
            console.print(message, highlight=False, soft_wrap=True)

        declare_options(command, run, ["store", "agents"], after=STORE_OPTIONS)
        return volume_app.command(name)(run)

    return decorate


@_volume_command("upload")
def upload_command(
    store: Store,
    agents: AgentPool,
    volume: VolumeArg,
    file: Annotated[Path, typer.Argument(help="Image file (qcow2, raw, vmdk, ...)")],
    host: HostOpt = None,
) -> str:
    """Upload an image file into a volume (created as qcow2 if missing)."""
    ref = resolve(store, agents, volume, host)
    upload(ref, file)
    return f"uploaded {file} to {ref}"


@_volume_command("download")
def download_command(
    store: Store,
    agents: AgentPool,
    volume: VolumeArg,
    file: Annotated[Path, typer.Argument(help="Image file to write")],
    disk_format: Annotated[str, typer.Option("--format", help="qcow2 or raw")] = "qcow2",
    host: HostOpt = None,
) -> str:
    """Download a volume into a standalone image file."""
    ref = resolve(store, agents, volume, host)
    download(ref, file, disk_format)
    return f"wrote {file} ({disk_format}) from {ref}"


@_volume_command("resize")
def resize_command(
    store: Store,
    agents: AgentPool,
    volume: VolumeArg,
    size: Annotated[str, typer.Argument(help="New size, e.g. 20Gi (grow only)")],
    host: HostOpt = None,
) -> str:
    """Grow a volume (raise its manifest's size too: the manifest stays the truth)."""
    try:
        wanted = parse_bytes(size)
    except ValueError as exc:
        raise VolumeCommandError(f"size: {exc}") from None
    ref = resolve(store, agents, volume, host)
    grown = resize(ref, wanted)
    return f"{ref}: {'grown to' if grown else 'already'} {format_bytes(wanted)}"


@_volume_command("copy")
def copy_command(
    store: Store,
    agents: AgentPool,
    source: Annotated[str, typer.Argument(help="POOL/VOLUME to copy")],
    target: Annotated[str, typer.Argument(help="POOL/VOLUME to make (must not exist)")],
    host: HostOpt = None,
    to_host: Annotated[
        str | None, typer.Option("--to-host", help="Host serving the target pool")
    ] = None,
) -> str:
    """Copy a volume into a new volume, in another pool or on another host."""
    src = resolve(store, agents, source, host)
    dst = resolve(store, agents, target, to_host)
    copy(src, dst)
    return f"copied {src} to {dst}"


def register(app: typer.Typer) -> None:
    """Adds the `volume` command group to the corral app."""
    app.add_typer(volume_app, name="volume")
