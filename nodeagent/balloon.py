"""The balloon verb: set a running domain's balloon target (memory the guest may use)."""

from __future__ import annotations

import logging

import libvirt

from agentapi import VerbResult
from nodeagent.context import AgentContext
from nodeagent.domains import lookup_domain
from nodeagent.errors import conflict, invalid_spec, libvirt_errors

log = logging.getLogger(__name__)


def set_balloon(ctx: AgentContext, name: str, target_mib: int) -> VerbResult:
    """Make the running domain's balloon target `target_mib` (live only; the persistent
    definition keeps its current memory, so a restart gives the guest all of it back).

    Conflict when the domain is not running; invalid_spec above its boot-time maximum.
    Repeating it with the same target changes nothing.
    """
    conn = ctx.connection.get()
    with ctx.locks.hold("domain", name), libvirt_errors(f"setting the balloon of {name}"):
        dom = lookup_domain(conn, name)
        if not dom.isActive():
            raise conflict(f"domain {name!r} is not running; a balloon target needs a guest")
        _state, max_kib, current_kib, _cpus, _time = dom.info()
        target_kib = target_mib * 1024
        if target_kib > max_kib:
            raise invalid_spec(
                "target_mib",
                f"{target_mib} MiB is above the domain's maximum of {max_kib // 1024} MiB",
            )
        if target_kib == current_kib:
            return VerbResult(name=name, changed=False, state="running", message="unchanged")
        dom.setMemoryFlags(target_kib, libvirt.VIR_DOMAIN_AFFECT_LIVE)
        log.info("balloon of %s: %d -> %d MiB", name, current_kib // 1024, target_mib)
        return VerbResult(
            name=name,
            changed=True,
            state="running",
            message=f"balloon target {current_kib // 1024} -> {target_mib} MiB",
        )
