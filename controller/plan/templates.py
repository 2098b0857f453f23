"""Which version of its template a VM expands with, and the pin its status records.

A VM keeps the template as it was when the VM was first planned: the planner records
that version in the VM's status (status.template: name, generation, spec) and expands
the VM with it from then on, so editing a Template changes no existing VM. A VM with
spec.templateFollow: true expands with the current template instead (its pin follows),
and so does a VM whose pin names another template (spec.template changed). The planner
keeps no history of its own: the pin in status is that history.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from pydantic import ValidationError

from controller.plan.memo import IdentityMemo
from schemas.template import Template, TemplateSpec
from schemas.vm import TemplatePin, VirtualMachine, VirtualMachineFields

if TYPE_CHECKING:
    from controller.plan.builder import PlanBuilder
    from controller.plan.expand import Expanded

_PINNED: IdentityMemo[Template] = IdentityMemo()
_PINS: IdentityMemo[TemplatePin] = IdentityMemo()
_SAME: IdentityMemo[bool] = IdentityMemo()


def template_in_force(vm: VirtualMachine, current: Template) -> Template:
    """Return the template the VM expands with: the copy pinned in its status unless it
    follows its template or the pin names another one (then `current`).

    A pinned spec that no longer validates (a schema change) yields `current`.
    """
    pin = vm.status.template if vm.status else None
    if vm.spec.template_follow or pin is None or pin.name != current.name:
        return current
    if _same(pin.spec, pin_of(current).spec):
        return current
    return _PINNED.get((pin, current), None, lambda: _pinned(pin, current))


def _pinned(pin: TemplatePin, current: Template) -> Template:
    try:
        spec = TemplateSpec.model_validate(
            pin.spec.model_dump(by_alias=True, exclude_defaults=True)
        )
    except ValidationError:
        return current
    return current.model_copy(update={"spec": spec})


def _same(a: VirtualMachineFields, b: VirtualMachineFields) -> bool:
    """Return True when two template specs say the same (stored pins mark defaults set)."""
    return _SAME.get(
        (a, b),
        None,
        lambda: a.model_dump(exclude_defaults=True) == b.model_dump(exclude_defaults=True),
    )


def pin_of(template: Template) -> TemplatePin:
    """Return the pin that records `template` as it is now."""
    return _PINS.get(
        (template,),
        None,
        lambda: TemplatePin(
            name=template.name,
            generation=template.metadata.generation,
            spec=VirtualMachineFields.model_validate(
                template.spec.model_dump(by_alias=True, exclude_unset=True)
            ),
        ),
    )


def template_note(pin: TemplatePin, current: Template) -> str | None:
    """Return a sentence for a VM kept on an older version of `current`, else None."""
    now = pin_of(current)
    if _same(pin.spec, now.spec):
        return None
    kept = f"generation {pin.generation}" if pin.generation is not None else "an earlier version"
    latest = f"generation {now.generation}" if now.generation is not None else "a newer version"
    return (
        f"Template/{current.name} is at {latest}; this VM keeps {kept} "
        "(set spec.templateFollow: true to take the change)"
    )


def record_templates(expanded: Expanded, out: PlanBuilder) -> None:
    """Add to every templated VM's verdict the pin of the template it expanded with, and
    a note when its template has moved on since."""
    for name, vm in expanded.vms.items():
        if vm.template is None:
            continue
        key = ("VirtualMachine", name)
        verdict = out.verdicts.get(key)
        if verdict is None:
            continue
        message = verdict.message
        current = expanded.templates.get(vm.template.name)
        note = template_note(vm.template, current) if current is not None else None
        if note and note not in message:
            message = f"{message.rstrip('.')}. {note}"
        out.verdicts[key] = replace(
            verdict, message=message, fields={**verdict.fields, "template": vm.template}
        )
