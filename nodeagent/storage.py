"""Storage verbs: pools (define, build, start, undefine) and volumes (create, thin clone,
grow, delete, upload, download); and reading pools with their volumes."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import libvirt
from pydantic import ValidationError

from agentapi import (
    ApplyResult,
    PoolSpec,
    PoolState,
    VerbResult,
    VolumeApplyResult,
    VolumeSpec,
    VolumeState,
)
from nodeagent.context import AgentContext
from nodeagent.definitions import (
    check_path_name,
    define_or_update,
    drifted_fields,
    ensure_removed,
    lookup_or_none,
    lookup_or_not_found,
    persistent_xml,
)
from nodeagent.errors import conflict, invalid_spec, libvirt_errors, not_found
from nodeagent.storagexml import build_pool, build_volume, parse_pool, parse_volume

log = logging.getLogger(__name__)

CHUNK_BYTES = 256 * 1024


def find_pool(conn: libvirt.virConnect, name: str) -> libvirt.virStoragePool | None:
    """Return the storage pool called `name`, or None."""
    return lookup_or_none(conn.storagePoolLookupByName, name, libvirt.VIR_ERR_NO_STORAGE_POOL)


def lookup_pool(conn: libvirt.virConnect, name: str) -> libvirt.virStoragePool:
    """Return the storage pool called `name`; not_found if missing."""
    missing = libvirt.VIR_ERR_NO_STORAGE_POOL
    return lookup_or_not_found(conn.storagePoolLookupByName, name, missing, "storage pool")


def find_volume(pool: libvirt.virStoragePool, name: str) -> libvirt.virStorageVol | None:
    """Return the volume called `name` in `pool`, or None."""
    return lookup_or_none(pool.storageVolLookupByName, name, libvirt.VIR_ERR_NO_STORAGE_VOL)


def _active_pool(conn: libvirt.virConnect, name: str) -> libvirt.virStoragePool:
    pool = lookup_pool(conn, name)
    if not pool.isActive():
        raise conflict(f"storage pool {name!r} is not active", retryable=True)
    return pool


def _existing_volume(conn: libvirt.virConnect, pool_name: str, name: str) -> libvirt.virStorageVol:
    """Return volume `name` of active pool `pool_name`; not_found if it is missing."""
    vol = find_volume(_active_pool(conn, pool_name), name)
    if vol is None:
        raise not_found("volume", f"{pool_name}/{name}")
    return vol


def pool_xml(pool: libvirt.virStoragePool) -> str:
    """Return the pool's persistent XML (drivers without the INACTIVE flag: its only XML)."""
    return persistent_xml(pool, libvirt.VIR_STORAGE_XML_INACTIVE)


def read_pool_state(pool: libvirt.virStoragePool, list_volumes: bool = True) -> PoolState:
    """Return the observed state of a pool and, unless `list_volumes` is False, its volumes."""
    persistent = bool(pool.isPersistent())
    autostart = bool(pool.autostart()) if persistent else False
    active = bool(pool.isActive())
    _, capacity, allocation, available = pool.info()
    spec = None
    try:
        spec = parse_pool(pool_xml(pool), autostart)
    except (ValidationError, ValueError):
        spec = None
    volumes = (
        sorted((parse_volume(v.XMLDesc(0)) for v in pool.listAllVolumes(0)), key=lambda v: v.name)
        if active and list_volumes
        else []
    )
    return PoolState(
        name=pool.name(),
        uuid=pool.UUIDString(),
        active=active,
        persistent=persistent,
        autostart=autostart,
        capacity_bytes=capacity,
        allocation_bytes=allocation,
        available_bytes=available,
        spec=spec,
        volumes=volumes,
        volumes_listed=list_volumes,
    )


def list_pools(ctx: AgentContext) -> list[PoolState]:
    """Return every storage pool on the host, by name."""
    conn = ctx.connection.get()
    with libvirt_errors("listing storage pools"):
        return sorted(
            (read_pool_state(p) for p in conn.listAllStoragePools(0)), key=lambda p: p.name
        )


def get_pool(ctx: AgentContext, name: str) -> PoolState:
    """Return the observed state of pool `name`; not_found if missing."""
    conn = ctx.connection.get()
    with libvirt_errors(f"reading storage pool {name}"):
        return read_pool_state(lookup_pool(conn, name))


def _pool_drift(desired: PoolSpec, observed: PoolSpec) -> list[str]:
    """Return the fields that need a redefinition (uuid and source_name left None are
    libvirt's choice; autostart is a flag, not XML)."""
    return drifted_fields(desired, observed, ("uuid", "source_name"), ignored=("autostart",))


def ensure_pool(ctx: AgentContext, name: str, spec: PoolSpec) -> ApplyResult:
    """Make pool `name` defined as `spec`, built, active, refreshed and autostarted as asked.

    Building (mkdir for dir/netfs, pvcreate+vgcreate for logical) happens only when
    the pool cannot start, and for logical never over an existing signature
    (VIR_STORAGE_POOL_BUILD_NO_OVERWRITE): an agent must not wipe a disk.
    """
    check_path_name(spec.name, name)
    conn = ctx.connection.get()
    with ctx.locks.hold("pool", name), libvirt_errors(f"ensuring storage pool {name}"):
        existing = find_pool(conn, name)
        current = read_pool_state(existing).spec if existing is not None else None
        done = define_or_update(
            f"storage pool {name}", existing, current, spec, _pool_drift,
            lambda desired: conn.storagePoolDefineXML(build_pool(desired), 0),
        )  # fmt: skip
        pool = done.obj
        if not pool.isActive():
            try:
                pool.create(0)
            except libvirt.libvirtError:
                flags = libvirt.VIR_STORAGE_POOL_BUILD_NO_OVERWRITE if spec.type == "logical" else 0
                pool.build(flags)
                pool.create(0)
            done.changed = True
        else:
            pool.refresh(0)
        return done.finish(name, spec.autostart)


def ensure_pool_undefined(ctx: AgentContext, name: str) -> VerbResult:
    """Make pool `name` absent from libvirt (stopped, undefined); its data stays on disk."""
    conn = ctx.connection.get()
    with ctx.locks.hold("pool", name), libvirt_errors(f"undefining storage pool {name}"):
        return ensure_removed(name, find_pool(conn, name))


def get_volume(ctx: AgentContext, pool_name: str, name: str) -> VolumeState:
    """Return volume `name` of pool `pool_name`; not_found if either is missing."""
    conn = ctx.connection.get()
    with libvirt_errors(f"reading volume {pool_name}/{name}"):
        vol = _existing_volume(conn, pool_name, name)
        return parse_volume(vol.XMLDesc(0))


def ensure_volume(
    ctx: AgentContext, pool_name: str, name: str, spec: VolumeSpec
) -> VolumeApplyResult:
    """Make volume `name` exist as `spec`: create it (a thin clone if it has a backing
    file) or grow it. Shrinking is invalid_spec; another format or backing file is a conflict."""
    check_path_name(spec.name, name)
    conn = ctx.connection.get()
    with (
        ctx.locks.hold("volume", f"{pool_name}/{name}"),
        libvirt_errors(f"ensuring volume {pool_name}/{name}"),
    ):
        pool = _active_pool(conn, pool_name)
        vol = find_volume(pool, name)
        if vol is None:
            vol = pool.createXML(build_volume(spec), 0)
            log.info("created volume %s/%s", pool_name, name)
            return VolumeApplyResult(
                name=name, changed=True, created=True, volume=parse_volume(vol.XMLDesc(0))
            )
        have = parse_volume(vol.XMLDesc(0))
        if have.format is not None and have.format != spec.format:
            raise conflict(f"volume {name!r} exists with format {have.format}, not {spec.format}")
        if spec.backing_path is not None and have.backing_path != spec.backing_path:
            raise conflict(
                f"volume {name!r} exists with backing file {have.backing_path}, "
                f"not {spec.backing_path}"
            )
        if spec.capacity_bytes < have.capacity_bytes:
            raise invalid_spec(
                "capacity_bytes",
                f"shrinking volume {name!r} from {have.capacity_bytes} to "
                f"{spec.capacity_bytes} bytes is not supported (data loss)",
            )
        if spec.capacity_bytes > have.capacity_bytes:
            vol.resize(spec.capacity_bytes, 0)
            log.info("grew volume %s/%s to %d bytes", pool_name, name, spec.capacity_bytes)
            return VolumeApplyResult(
                name=name, changed=True, resized=True, volume=parse_volume(vol.XMLDesc(0))
            )
        return VolumeApplyResult(name=name, changed=False, volume=have)


def ensure_volume_deleted(ctx: AgentContext, pool_name: str, name: str) -> VerbResult:
    """Make volume `name` absent (its data is deleted)."""
    conn = ctx.connection.get()
    with (
        ctx.locks.hold("volume", f"{pool_name}/{name}"),
        libvirt_errors(f"deleting volume {pool_name}/{name}"),
    ):
        vol = find_volume(_active_pool(conn, pool_name), name)
        if vol is None:
            return VerbResult(name=name, changed=False, state="absent")
        vol.delete(0)
        return VerbResult(name=name, changed=True, state="absent")


class VolumeUpload:
    """An open upload into a volume: `send` chunks, then `finish` (or `abort`)."""

    def __init__(self, ctx: AgentContext, pool_name: str, name: str) -> None:
        conn = ctx.connection.get()
        with libvirt_errors(f"uploading to volume {pool_name}/{name}"):
            vol = _existing_volume(conn, pool_name, name)
            self._stream = conn.newStream(0)
            try:
                vol.upload(self._stream, 0, 0, 0)
            except libvirt.libvirtError:
                self._stream.abort()
                raise
        self.bytes_sent = 0
        self._label = f"{pool_name}/{name}"

    def send(self, chunk: bytes) -> None:
        """Write one chunk to the volume."""
        with libvirt_errors(f"uploading to volume {self._label}"):
            view = memoryview(chunk)
            while view:
                sent = self._stream.send(bytes(view))
                view = view[sent:]
            self.bytes_sent += len(chunk)

    def finish(self) -> None:
        """Complete the upload."""
        with libvirt_errors(f"uploading to volume {self._label}"):
            self._stream.finish()

    def abort(self) -> None:
        """Abandon the upload."""
        try:
            self._stream.abort()
        except libvirt.libvirtError:
            log.debug("aborting upload stream failed", exc_info=True)


def open_volume_download(ctx: AgentContext, pool_name: str, name: str) -> Iterator[bytes]:
    """Return an iterator over a volume's bytes; errors before the first chunk are raised."""
    conn = ctx.connection.get()
    with libvirt_errors(f"downloading volume {pool_name}/{name}"):
        vol = _existing_volume(conn, pool_name, name)
        stream = conn.newStream(0)
        try:
            vol.download(stream, 0, 0, 0)
        except libvirt.libvirtError:
            stream.abort()
            raise

    def _chunks() -> Iterator[bytes]:
        try:
            while True:
                data = stream.recv(CHUNK_BYTES)
                if not data:
                    break
                yield data
            stream.finish()
        except BaseException:
            stream.abort()
            raise

    return _chunks()
