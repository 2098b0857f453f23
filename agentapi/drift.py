"""The drift check: where an observed domain spec differs from the desired one."""

from __future__ import annotations

from typing import Any

from agentapi.domains import DomainSpec

# Values libvirt fills in when the spec leaves them open: None in the desired spec
# means "whatever libvirt chose", so they are not drift.
_FILLED_BY_LIBVIRT = {"machine"}


def diff_domain_specs(desired: DomainSpec, observed: DomainSpec) -> list[str]:
    """Return the dotted field paths where `observed` differs from `desired`.

    A desired None for a value libvirt fills in (machine type, NIC MAC address)
    matches anything; everything else must be equal. Empty list: no drift.
    """
    want = desired.model_dump()
    have = observed.model_dump()
    changed: list[str] = []
    for key, value in want.items():
        if key in _FILLED_BY_LIBVIRT and value is None:
            continue
        if key == "nics":
            changed.extend(_diff_nics(value, have["nics"]))
        elif key == "max_vcpus":
            # None means "as many as vcpus": compare the effective maximum.
            if (value or want["vcpus"]) != (have["max_vcpus"] or have["vcpus"]):
                changed.append(key)
        elif value != have.get(key):
            changed.append(key)
    return changed


def _diff_nics(want: list[dict[str, Any]], have: list[dict[str, Any]]) -> list[str]:
    if len(want) != len(have):
        return ["nics"]
    changed = []
    for index, (w, h) in enumerate(zip(want, have, strict=True)):
        for key, value in w.items():
            if key == "mac" and value is None:
                continue
            if value != h.get(key):
                changed.append(f"nics.{index}.{key}")
    return changed
