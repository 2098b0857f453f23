"""Template: a VM spec that VMs inherit from; its volume disks become thin clones.

Changing a Template changes no existing VM unless the VM opts in. The first plan that
expands a VM records the template it used in the VM's status (status.template: name,
generation, and the template spec as written); later plans expand the VM with that
pinned copy, and the VM's Ready message notes when the template has moved on. A VM
with spec.templateFollow: true expands with the current template (and its pin follows);
pointing spec.template at another template pins that one afresh. The planner stays
pure: the pin in status is the only history it reads (controller/plan/templates.py).
"""

from __future__ import annotations

from typing import Literal

from schemas.meta import ObjectStatus, Resource
from schemas.vm import VirtualMachineFields, VirtualMachineSpec


class TemplateSpec(VirtualMachineFields):
    """Defaults for VMs naming this template; a VM's own fields win, disks and NICs by name."""


class TemplateStatus(ObjectStatus):
    pass


class Template(Resource[TemplateSpec, TemplateStatus]):
    kind: Literal["Template"] = "Template"


def merge_template(vm: VirtualMachineSpec, template: TemplateSpec) -> VirtualMachineSpec:
    """Return the VM spec with the template's settings filled in under the VM's own.

    Scalars and sub-objects the VM sets win whole; disks and NICs merge by name (a VM
    entry replaces the template entry of the same name, the rest are appended); hooks
    are the union. The template's volume disks stay references to the base volumes:
    the planner turns them into per-VM thin clones.
    """
    merged = template.model_dump(exclude_unset=True)
    own = vm.model_dump(exclude_unset=True)
    for key in ("disks", "nics"):
        by_name = {item["name"]: item for item in merged.get(key, [])}
        for item in own.pop(key, []):
            by_name[item["name"]] = item
        merged[key] = list(by_name.values())
    hooks = list(dict.fromkeys([*merged.get("hooks", []), *own.pop("hooks", [])]))
    merged.update(own)
    merged["hooks"] = hooks
    merged["template"] = vm.template
    return VirtualMachineSpec.model_validate(merged)
