"""Outgoing live migration as a background job: peer-to-peer, persistent on the
destination, undefined on the source; with bandwidth, max downtime, a timeout,
progress and cancel.

The POST returns as soon as the job runs; the controller polls the job (or
watches events) and, level-triggered, finds the domain on the destination host.
"""

from __future__ import annotations

import logging
import threading
import time

import libvirt

from agentapi import MigrateRequest, MigrationJob, VerbResult
from nodeagent.context import AgentContext
from nodeagent.domains import lookup_domain, spec_from_xml
from nodeagent.errors import AgentFailure, conflict, from_libvirt, libvirt_errors, not_found

log = logging.getLogger(__name__)

MIGRATE_FLAGS = (
    libvirt.VIR_MIGRATE_LIVE
    | libvirt.VIR_MIGRATE_PEER2PEER
    | libvirt.VIR_MIGRATE_PERSIST_DEST
    | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
)


class MigrationJobs:
    """The migration jobs of this agent by domain name (the last one per domain)."""

    def __init__(self) -> None:
        self._jobs: dict[str, MigrationJob] = {}
        self._domains: dict[str, libvirt.virDomain] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> MigrationJob | None:
        """Return the domain's last migration job with fresh progress if it runs."""
        with self._lock:
            job = self._jobs.get(name)
            dom = self._domains.get(name)
        if job is None or job.state != "running" or dom is None:
            return job
        update: dict[str, object] = {"elapsed_s": time.time() - job.started_at}
        try:
            stats = dom.jobStats(0)
        except libvirt.libvirtError:
            stats = {}
        for key in ("data_total", "data_processed", "data_remaining"):
            if key in stats:
                update[f"{key}_bytes"] = int(stats[key])
        return job.model_copy(update=update)

    def record(self, name: str, job: MigrationJob, dom: libvirt.virDomain | None = None) -> None:
        """Store the job of `name` (and the domain handle while it runs)."""
        with self._lock:
            self._jobs[name] = job
            if dom is not None:
                self._domains[name] = dom
            elif job.state != "running":
                self._domains.pop(name, None)


def start_migration(ctx: AgentContext, name: str, request: MigrateRequest) -> MigrationJob:
    """Start migrating running domain `name`; return the job (the running one if repeated).

    Before-hooks (before_vm_migrate_source) run here, so a veto fails this call.
    Conflict if the domain is not running or migrates elsewhere already.
    """
    conn = ctx.connection.get()
    with ctx.locks.hold("domain", name), libvirt_errors(f"migrating domain {name}"):
        existing = ctx.migrations.get(name)
        if existing is not None and existing.state == "running":
            if existing.destination_uri == request.destination_uri:
                return existing
            raise conflict(f"domain {name!r} is already migrating to {existing.destination_uri}")
        dom = lookup_domain(conn, name)
        if not dom.isActive():
            raise conflict(f"domain {name!r} is not running; only running domains migrate live")
        xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE)
        spec = spec_from_xml(xml)
        wanted = spec.hooks if spec else []
        uuid = dom.UUIDString()
        dest_xml = ctx.hooks.run_before("before_vm_migrate_source", xml, name, uuid, wanted)
        job = MigrationJob(
            state="running",
            destination_uri=request.destination_uri,
            started_at=time.time(),
            elapsed_s=0.0,
        )
        ctx.migrations.record(name, job, dom)
        thread = threading.Thread(
            target=_run_migration,
            args=(ctx, dom, name, request, xml, dest_xml if dest_xml != xml else None, wanted),
            name=f"migrate-{name}",
            daemon=True,
        )
        thread.start()
        return job


def _run_migration(
    ctx: AgentContext,
    dom: libvirt.virDomain,
    name: str,
    request: MigrateRequest,
    xml: str,
    dest_xml: str | None,
    wanted: list[str],
) -> None:
    started = time.time()
    uuid = dom.UUIDString()
    flags = MIGRATE_FLAGS
    if request.copy_storage:
        flags |= libvirt.VIR_MIGRATE_NON_SHARED_DISK
    if request.auto_converge:
        flags |= libvirt.VIR_MIGRATE_AUTO_CONVERGE
    params: dict[str, object] = {}
    if request.bandwidth_mibps is not None:
        params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = request.bandwidth_mibps
    if dest_xml is not None:
        params[libvirt.VIR_MIGRATE_PARAM_DEST_XML] = dest_xml
    timed_out = threading.Event()

    def _on_timeout() -> None:
        timed_out.set()
        try:
            dom.abortJob()
        except libvirt.libvirtError:
            log.warning("aborting timed-out migration of %s failed", name, exc_info=True)

    timer = threading.Timer(request.timeout_s, _on_timeout)
    timer.daemon = True
    timer.start()
    last = ctx.migrations.get(name)
    try:
        if request.max_downtime_ms is not None:
            dom.migrateSetMaxDowntime(request.max_downtime_ms, 0)
        log.info("migrating %s to %s", name, request.destination_uri)
        dom.migrateToURI3(request.destination_uri, params, flags)
    except libvirt.libvirtError as exc:
        error = from_libvirt(exc, f"migrating {name} to {request.destination_uri}").error
        aborted = exc.get_error_code() == libvirt.VIR_ERR_OPERATION_ABORTED
        if timed_out.is_set():
            error = AgentFailure(
                "unavailable",
                f"migration of {name} timed out after {request.timeout_s:g} s and was aborted",
                retryable=True,
                libvirt_code=exc.get_error_code(),
            ).error
        state = "cancelled" if aborted and not timed_out.is_set() else "failed"
        log.warning("migration of %s %s: %s", name, state, error.message)
        job = (last or ctx.migrations.get(name)) or _blank(request, started)
        update = {"state": state, "elapsed_s": time.time() - started, "error": error}
        ctx.migrations.record(name, job.model_copy(update=update))
        return
    finally:
        timer.cancel()
    job = last or _blank(request, started)
    ctx.migrations.record(
        name, job.model_copy(update={"state": "completed", "elapsed_s": time.time() - started})
    )
    log.info("migrated %s to %s in %.2f s", name, request.destination_uri, time.time() - started)
    ctx.hooks.run_after("after_vm_migrate_source", dest_xml or xml, name, uuid, wanted)


def _blank(request: MigrateRequest, started: float) -> MigrationJob:
    return MigrationJob(
        state="running", destination_uri=request.destination_uri, started_at=started, elapsed_s=0
    )


def get_migration(ctx: AgentContext, name: str) -> MigrationJob:
    """Return the last migration job of `name`; not_found if it never migrated from here."""
    job = ctx.migrations.get(name)
    if job is None:
        raise not_found("migration job of domain", name)
    return job


def cancel_migration(ctx: AgentContext, name: str) -> VerbResult:
    """Abort the running migration of `name` (changed false if none runs)."""
    job = ctx.migrations.get(name)
    if job is None or job.state != "running":
        return VerbResult(name=name, changed=False, state=job.state if job else None)
    conn = ctx.connection.get()
    with libvirt_errors(f"cancelling migration of {name}"):
        lookup_domain(conn, name).abortJob()
    return VerbResult(name=name, changed=True, state="cancelling")
