"""Libvirt's numeric states, reasons and events as the words the API speaks."""

from __future__ import annotations

import libvirt

DOMAIN_STATES: dict[int, str] = {
    libvirt.VIR_DOMAIN_NOSTATE: "nostate",
    libvirt.VIR_DOMAIN_RUNNING: "running",
    libvirt.VIR_DOMAIN_BLOCKED: "blocked",
    libvirt.VIR_DOMAIN_PAUSED: "paused",
    libvirt.VIR_DOMAIN_SHUTDOWN: "shutdown",
    libvirt.VIR_DOMAIN_SHUTOFF: "shutoff",
    libvirt.VIR_DOMAIN_CRASHED: "crashed",
    libvirt.VIR_DOMAIN_PMSUSPENDED: "pmsuspended",
}


def _constants(prefix: str) -> dict[int, str]:
    """Return {value: lower-case suffix} of libvirt constants named prefix + SUFFIX."""
    return {
        value: name[len(prefix) :].lower()
        for name, value in vars(libvirt).items()
        if name.startswith(prefix) and isinstance(value, int) and not name.endswith("_LAST")
    }


_REASONS: dict[int, dict[int, str]] = {
    state: _constants(f"VIR_DOMAIN_{word.upper()}_") for state, word in DOMAIN_STATES.items()
}

DOMAIN_EVENTS: dict[int, str] = {
    libvirt.VIR_DOMAIN_EVENT_DEFINED: "defined",
    libvirt.VIR_DOMAIN_EVENT_UNDEFINED: "undefined",
    libvirt.VIR_DOMAIN_EVENT_STARTED: "started",
    libvirt.VIR_DOMAIN_EVENT_SUSPENDED: "suspended",
    libvirt.VIR_DOMAIN_EVENT_RESUMED: "resumed",
    libvirt.VIR_DOMAIN_EVENT_STOPPED: "stopped",
    libvirt.VIR_DOMAIN_EVENT_SHUTDOWN: "shutdown",
    libvirt.VIR_DOMAIN_EVENT_PMSUSPENDED: "pmsuspended",
    libvirt.VIR_DOMAIN_EVENT_CRASHED: "crashed",
}
_DOMAIN_EVENT_DETAILS: dict[int, dict[int, str]] = {
    event: _constants(f"VIR_DOMAIN_EVENT_{word.upper()}_") for event, word in DOMAIN_EVENTS.items()
}

NETWORK_EVENTS: dict[int, str] = {
    libvirt.VIR_NETWORK_EVENT_DEFINED: "defined",
    libvirt.VIR_NETWORK_EVENT_UNDEFINED: "undefined",
    libvirt.VIR_NETWORK_EVENT_STARTED: "started",
    libvirt.VIR_NETWORK_EVENT_STOPPED: "stopped",
}
POOL_EVENTS: dict[int, str] = {
    libvirt.VIR_STORAGE_POOL_EVENT_DEFINED: "defined",
    libvirt.VIR_STORAGE_POOL_EVENT_UNDEFINED: "undefined",
    libvirt.VIR_STORAGE_POOL_EVENT_STARTED: "started",
    libvirt.VIR_STORAGE_POOL_EVENT_STOPPED: "stopped",
    libvirt.VIR_STORAGE_POOL_EVENT_CREATED: "created",
    libvirt.VIR_STORAGE_POOL_EVENT_DELETED: "deleted",
}


def domain_state_name(state: int) -> str:
    """Return the word for a libvirt domain state (`nostate` for unknown values)."""
    return DOMAIN_STATES.get(state, "nostate")


def domain_reason_name(state: int, reason: int) -> str:
    """Return the word for a state's reason, e.g. (shutoff, 2) -> 'destroyed'."""
    return _REASONS.get(state, {}).get(reason, "unknown")


def domain_event_name(event: int, detail: int) -> tuple[str, str]:
    """Return (event, detail) words for a domain lifecycle event."""
    return DOMAIN_EVENTS.get(event, str(event)), _DOMAIN_EVENT_DETAILS.get(event, {}).get(
        detail, str(detail)
    )
