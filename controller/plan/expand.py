"""Expand desired objects: templates merged into VMs, template disks turned into thin clones.

A template's volume disks become per-VM Volumes named "<vm>-<disk>", thin clones
(source.volume) of the template's base volume in the base volume's pool. A read-only
template disk stays shared: the VM attaches the base volume itself, as nothing writes to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import ValidationError

from controller.plan import reasons
from controller.plan.memo import IdentityMemo
from controller.plan.model import Desired, ObjectKey
from controller.plan.templates import pin_of, template_in_force
from schemas.affinity import AffinityGroup
from schemas.host import Host
from schemas.kinds import AnyResource
from schemas.meta import check_dns_label
from schemas.network import Network
from schemas.policy import SchedulingPolicy
from schemas.snapshot import Snapshot
from schemas.storagepool import StoragePool
from schemas.template import Template, merge_template
from schemas.vm import Disk, TemplatePin, VirtualMachine, VirtualMachineSpec
from schemas.volume import VolumeFormat, VolumeSource, VolumeSpec


@dataclass(frozen=True)
class DesiredVM:
    """A VM with its template merged in; `clones` are the implicit volumes made for it."""

    name: str
    resource: VirtualMachine
    spec: VirtualMachineSpec
    clones: tuple[str, ...] = ()
    template: TemplatePin | None = None
    """The version of its template the VM expanded with (controller.plan.templates)."""

    @property
    def labels(self) -> dict[str, str]:
        return self.resource.metadata.labels


@dataclass
class Expanded:
    """Every desired object by kind and name, after expansion, plus what could not expand."""

    hosts: dict[str, Host] = field(default_factory=dict)
    networks: dict[str, Network] = field(default_factory=dict)
    pools: dict[str, StoragePool] = field(default_factory=dict)
    volumes: dict[str, VolumeSpec] = field(default_factory=dict)
    implicit_volumes: dict[str, str] = field(default_factory=dict)
    """Implicit clone volume name -> the VM it was made for."""
    vms: dict[str, DesiredVM] = field(default_factory=dict)
    templates: dict[str, Template] = field(default_factory=dict)
    affinity: list[AffinityGroup] = field(default_factory=list)
    snapshots: dict[str, Snapshot] = field(default_factory=dict)
    policies: dict[str, SchedulingPolicy] = field(default_factory=dict)
    problems: dict[ObjectKey, tuple[str, str]] = field(default_factory=dict)
    """(kind, name) -> (reason, message) for objects that could not be expanded."""
    deleted: dict[str, dict[str, AnyResource | None]] = field(default_factory=dict)
    """kind -> name -> the tombstoned object when still known (None otherwise)."""

    def is_deleted(self, kind: str, name: str) -> bool:
        return name in self.deleted.get(kind, {})


@dataclass(frozen=True)
class _Merged:
    """A VM's spec with its template merged in and each template volume disk pointing at
    the VM's thin clone; `clones` gives each such disk's name and the base volume it clones.

    Only this is memoised, not the merged spec before the clones: keeping both would
    hold two specs per VM."""

    spec: VirtualMachineSpec
    clones: tuple[tuple[str, str], ...]


_MERGED: IdentityMemo[_Merged | str] = IdentityMemo()
_CLONE_SPEC: IdentityMemo[VolumeSpec] = IdentityMemo()


def expand(desired: Desired) -> Expanded:
    """Return the expanded desired world; objects that cannot expand land in `problems`."""
    out = Expanded()
    for kind, name in desired.deleted:
        out.deleted.setdefault(kind, {})[name] = desired.objects.get((kind, name))
    live = {k: o for k, o in desired.objects.items() if k not in desired.deleted}
    for (kind, name), obj in sorted(live.items()):
        if kind == "Host":
            out.hosts[name] = obj
        elif kind == "Network":
            out.networks[name] = obj
        elif kind == "StoragePool":
            out.pools[name] = obj
        elif kind == "Volume":
            out.volumes[name] = obj.spec
        elif kind == "Template":
            out.templates[name] = obj
        elif kind == "AffinityGroup":
            out.affinity.append(obj)
        elif kind == "Snapshot":
            out.snapshots[name] = obj
        elif kind == "SchedulingPolicy":
            out.policies[name] = obj
    for (kind, _name), obj in sorted(live.items()):
        if kind == "VirtualMachine":
            _expand_vm(out, obj)
    return out


def expand_vm_volumes(vm: VirtualMachine, templates: dict[str, Template]) -> list[str]:
    """Return the implicit clone volume names a VM gets from its template ([] without one)."""
    template = templates.get(vm.spec.template or "")
    if template is None:
        return []
    template = template_in_force(vm, template)
    own = {disk.name for disk in vm.spec.disks}
    return [
        clone_name(vm.name, disk.name)
        for disk in template.spec.disks
        if disk.volume and not disk.readonly and disk.name not in own
    ]


def clone_name(vm: str, disk: str) -> str:
    """Return the name of the implicit thin clone of a template disk for a VM."""
    return f"{vm}-{disk}"


def _expand_vm(out: Expanded, vm: VirtualMachine) -> None:
    key = ("VirtualMachine", vm.name)
    spec = vm.spec
    clones: list[str] = []
    pin: TemplatePin | None = None
    if spec.template is not None:
        template = out.templates.get(spec.template)
        if template is None:
            out.problems[key] = (
                reasons.DEPENDENCY_MISSING,
                f"Template/{spec.template} is not defined; define it or remove spec.template",
            )
            return
        current, template = template, template_in_force(vm, template)
        pin = pin_of(current) if template is current or vm.status is None else vm.status.template
        merged = _MERGED.get((vm, template), None, lambda: _merge(vm, template))
        if isinstance(merged, str):
            out.problems[key] = (reasons.INVALID_SPEC, merged)
            return
        for disk, base in merged.clones:
            problem = _add_clone(out, vm.name, disk, base)
            if problem:
                out.problems[key] = problem
                return
            clones.append(clone_name(vm.name, disk))
        spec = merged.spec
    out.vms[vm.name] = DesiredVM(vm.name, vm, spec, tuple(clones), pin)


def _merge(vm: VirtualMachine, template: Template) -> _Merged | str:
    """Return the merged spec with its clones, or a message naming the field that is
    missing or wrong."""
    try:
        merged = merge_template(vm.spec, template.spec)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        return f"spec.{loc}: {first['msg']} (after merging Template/{template.name})"
    missing = [f for f in ("cpus", "memory") if getattr(merged, f) is None]
    if missing:
        return (
            f"spec.{' and spec.'.join(missing)} must be set: neither the VM nor "
            f"Template/{template.name} sets it"
        )
    own = {disk.name for disk in vm.spec.disks}
    disks: list[Disk] = []
    clones: list[tuple[str, str]] = []
    for disk in merged.disks:
        if disk.volume and not disk.readonly and disk.name not in own:
            clones.append((disk.name, disk.volume))
            disk = disk.model_copy(update={"volume": clone_name(vm.name, disk.name)})
        disks.append(disk)
    spec = merged.model_copy(update={"disks": disks}) if clones else merged
    return _Merged(spec, tuple(clones))


def _add_clone(out: Expanded, vm: str, disk: str, base_name: str) -> tuple[str, str] | None:
    """Add the implicit clone volume of a template disk; return a problem if impossible."""
    base = out.volumes.get(base_name)
    if base is None or base_name in out.implicit_volumes:
        return (
            reasons.DEPENDENCY_MISSING,
            f"template disk {disk!r} uses Volume/{base_name}, which is not defined",
        )
    name = clone_name(vm, disk)
    try:
        check_dns_label(name)
    except ValueError as exc:
        return (reasons.INVALID_SPEC, f"thin clone of disk {disk!r}: {exc}")
    if name in out.volumes:
        return (
            reasons.INVALID_SPEC,
            f"the thin clone of template disk {disk!r} would be named {name!r}, "
            f"but Volume/{name} already exists; rename the disk or the volume",
        )
    out.volumes[name] = _CLONE_SPEC.get((base,), base_name, lambda: _clone_spec(base, base_name))
    out.implicit_volumes[name] = vm
    return None


def _clone_spec(base: VolumeSpec, base_name: str) -> VolumeSpec:
    """Return the spec of a thin clone of `base`: same pool and size, qcow2 over it."""
    return VolumeSpec(
        pool=base.pool,
        size=base.size,
        format=VolumeFormat.QCOW2,
        source=VolumeSource(volume=base_name),
    )
