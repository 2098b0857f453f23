"""What networks and storage pools share: a persistent libvirt object defined from a spec,
redefined when it drifts from it, and removed.

Both kinds have a name, a UUID, an active flag, a persistent XML and an autostart
flag; the verbs in `networks.py` and `storage.py` add what differs (a network keeps
its bridge and refuses removal while in use; a pool is built and started).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, TypeVar

import libvirt
from pydantic import BaseModel

from agentapi import ApplyResult, VerbResult
from nodeagent.errors import invalid_spec, not_found

log = logging.getLogger(__name__)

O = TypeVar("O")  # noqa: E741 - a libvirt object (virNetwork, virStoragePool, ...)
S = TypeVar("S", bound=BaseModel)


def lookup_or_none(lookup: Callable[[str], O], name: str, missing_code: int) -> O | None:
    """Return `lookup(name)`, or None when libvirt answers `missing_code` (no such object)."""
    try:
        return lookup(name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == missing_code:
            return None
        raise


def lookup_or_not_found(lookup: Callable[[str], O], name: str, missing_code: int, what: str) -> O:
    """Return `lookup(name)`; not_found naming `what` when libvirt answers `missing_code`."""
    found = lookup_or_none(lookup, name, missing_code)
    if found is None:
        raise not_found(what, name)
    return found


def persistent_xml(obj: Any, inactive_flag: int) -> str:
    """Return the object's persistent XML (drivers without the INACTIVE flag: its only XML)."""
    try:
        return obj.XMLDesc(inactive_flag)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_INVALID_ARG:
            raise
        return obj.XMLDesc(0)


def drifted_fields(
    desired: BaseModel,
    observed: BaseModel,
    open_fields: Collection[str],
    ignored: Collection[str] = (),
) -> list[str]:
    """Return the fields where `observed` differs from `desired`.

    A field in `open_fields` left None in `desired` is libvirt's to choose: not drift.
    """
    want, have = desired.model_dump(), observed.model_dump()
    return [
        key
        for key, value in want.items()
        if key not in ignored and not (key in open_fields and value is None) and value != have[key]
    ]


def check_path_name(spec_name: str, name: str) -> None:
    """Raise invalid_spec unless the spec names the object the request path names."""
    if spec_name != name:
        raise invalid_spec("name", f"spec names {spec_name!r} but the path names {name!r}")


@dataclass
class Definition:
    """The outcome of `define_or_update`: the object as now defined and what changed."""

    obj: Any
    created: bool
    changed: bool
    restart_required: list[str] = field(default_factory=list)

    def finish(self, name: str, autostart: bool) -> ApplyResult:
        """Set the object's autostart flag as asked; return the verb's ApplyResult."""
        changed = ensure_autostart(self.obj, autostart) or self.changed
        return ApplyResult(
            name=name,
            changed=changed,
            created=self.created,
            restart_required=self.restart_required,
        )


def define_or_update(
    label: str,
    existing: Any | None,
    current: S | None,
    spec: S,
    drift_of: Callable[[S, S], list[str]],
    define: Callable[[S], Any],
) -> Definition:
    """Define the object from `spec` when it is missing or has drifted; return the outcome.

    `current` is the spec read back from `existing` (None: unreadable, so redefine).
    A redefinition keeps the existing UUID; when the object was active, the drifted
    fields are listed in `restart_required`: the running object keeps its old
    definition until restarted, which the caller decides (it may cut users off).
    """
    drift = drift_of(spec, current) if current is not None else ["*"]
    if not drift:
        return Definition(existing, created=False, changed=False)
    was_active = existing is not None and bool(existing.isActive())
    desired = spec if existing is None else spec.model_copy(update={"uuid": existing.UUIDString()})
    obj = define(desired)
    log.info("defined %s", label)
    restart = drift if was_active else []
    return Definition(obj, created=existing is None, changed=True, restart_required=restart)


def ensure_autostart(obj: Any, autostart: bool) -> bool:
    """Set the object's autostart flag to `autostart`; return whether it changed."""
    if bool(obj.autostart()) == autostart:
        return False
    obj.setAutostart(1 if autostart else 0)
    return True


def ensure_removed(
    name: str, obj: Any | None, before_stop: Callable[[], None] | None = None
) -> VerbResult:
    """Stop (after `before_stop`, which may refuse by raising) and undefine `obj`."""
    if obj is None:
        return VerbResult(name=name, changed=False, state="absent")
    if obj.isActive():
        if before_stop is not None:
            before_stop()
        obj.destroy()
    if obj.isPersistent():
        obj.undefine()
    return VerbResult(name=name, changed=True, state="absent")
