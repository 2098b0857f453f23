"""Cross-object checks over a whole set of objects: references resolve, nothing clashes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from schemas.affinity import AffinityGroup
from schemas.kinds import AnyResource
from schemas.policy import SchedulingPolicy
from schemas.snapshot import Snapshot
from schemas.template import Template
from schemas.vm import VirtualMachine
from schemas.volume import Volume


@dataclass(frozen=True)
class ReferenceProblem:
    """A problem found across objects: `obj` at field `loc` refers to or clashes with `target`."""

    obj: tuple[str, str]
    loc: tuple[str | int, ...]
    message: str
    target: tuple[str, str] | None = None


def _refs(obj: AnyResource) -> Iterable[tuple[tuple[str | int, ...], str, str]]:
    """Yield (field path, target kind, target name) for every name `obj` refers to."""
    spec = obj.spec
    if isinstance(obj, VirtualMachine | Template):
        if isinstance(obj, VirtualMachine) and spec.template:
            yield ("spec", "template"), "Template", spec.template
        for i, disk in enumerate(spec.disks):
            if disk.volume:
                yield ("spec", "disks", i, "volume"), "Volume", disk.volume
        for i, nic in enumerate(spec.nics):
            yield ("spec", "nics", i, "network"), "Network", nic.network
        if spec.placement and spec.placement.host:
            yield ("spec", "placement", "host"), "Host", spec.placement.host
    elif isinstance(obj, Volume):
        yield ("spec", "pool"), "StoragePool", spec.pool
        if spec.source and spec.source.volume:
            yield ("spec", "source", "volume"), "Volume", spec.source.volume
    elif isinstance(obj, Snapshot):
        yield ("spec", "vm"), "VirtualMachine", spec.vm
    elif isinstance(obj, AffinityGroup):
        for i, vm in enumerate(spec.vms):
            yield ("spec", "vms", i), "VirtualMachine", vm
        for i, host in enumerate(spec.hosts):
            yield ("spec", "hosts", i), "Host", host


def check_references(objects: Iterable[AnyResource]) -> list[ReferenceProblem]:
    """Return every dangling reference and cross-object clash in the set, in input order.

    Checked: VM -> Template, Volume (disks), Network (NICs), Host (pin); Volume -> pool
    and clone source; Snapshot -> VM; AffinityGroup -> VMs and hosts; a volume used
    writable by two VMs; a volume cloned from itself; a host picked by two policies.
    """
    objects = list(objects)
    index = {(o.kind, o.metadata.name): o for o in objects}
    problems: list[ReferenceProblem] = []
    writers: dict[str, tuple[str, tuple[str | int, ...]]] = {}
    for obj in objects:
        me = (obj.kind, obj.metadata.name)
        for loc, kind, name in _refs(obj):
            if (kind, name) not in index:
                problems.append(
                    ReferenceProblem(me, loc, f"{kind}/{name} is not defined", (kind, name))
                )
            elif (kind, name) == me:
                problems.append(ReferenceProblem(me, loc, f"{obj.ref} refers to itself", me))
        if isinstance(obj, VirtualMachine):
            for i, disk in enumerate(obj.spec.disks):
                if not disk.volume or disk.readonly:
                    continue
                loc = ("spec", "disks", i, "volume")
                other = writers.get(disk.volume)
                if other and other[0] != obj.metadata.name:
                    problems.append(
                        ReferenceProblem(
                            me,
                            loc,
                            f"Volume/{disk.volume} is already used writable by "
                            f"VirtualMachine/{other[0]}; a disk can be attached to one VM "
                            "(or mark both readonly)",
                            ("VirtualMachine", other[0]),
                        )
                    )
                writers.setdefault(disk.volume, (obj.metadata.name, loc))
    problems += _policy_overlaps(objects)
    return problems


def _policy_overlaps(objects: list[AnyResource]) -> list[ReferenceProblem]:
    """Return a problem for every host selected by more than one SchedulingPolicy."""
    policies = [o for o in objects if isinstance(o, SchedulingPolicy)]
    if len(policies) < 2:
        return []
    problems = []
    for host in (o for o in objects if o.kind == "Host"):
        picked = [p for p in policies if p.spec.host_selector.matches(host.metadata.labels)]
        for extra in picked[1:]:
            problems.append(
                ReferenceProblem(
                    (extra.kind, extra.metadata.name),
                    ("spec", "hostSelector"),
                    f"Host/{host.metadata.name} is also selected by "
                    f"SchedulingPolicy/{picked[0].metadata.name}; a host follows one policy",
                    ("SchedulingPolicy", picked[0].metadata.name),
                )
            )
    return problems
