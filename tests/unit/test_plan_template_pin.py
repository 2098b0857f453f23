"""Templates: a VM keeps the template it was created from (pinned in its status) unless
it sets templateFollow; a VM kept on an older version says so in its verdict."""

from __future__ import annotations

from fleet_sim import FleetSim, converge, desired_of, manifest
from plan_fixtures import POLICY, host, network, pool, volume

from controller.plan import plan
from controller.plan.expand import expand
from schemas.vm import TemplatePin, VirtualMachineStatus

MIB = 2**20
KEY = ("VirtualMachine", "web-0")


def template(memory: str, generation: int):
    obj = manifest(
        "Template",
        "small",
        {
            "cpus": 1,
            "memory": memory,
            "disks": [{"name": "root", "volume": "base"}],
            "nics": [{"name": "eth0", "network": "lan"}],
        },
    )
    return obj.model_copy(
        update={"metadata": obj.metadata.model_copy(update={"generation": generation})}
    )


def web(pin: TemplatePin | None = None, **spec):
    obj = manifest("VirtualMachine", "web-0", {"template": "small", **spec})
    if pin is None:
        return obj
    return obj.model_copy(update={"status": VirtualMachineStatus(template=pin)})


def base(*extra):
    return [host("host-a"), network(), pool(), volume("base", size="1Gi"), *extra]


def created_from_first_version() -> tuple[FleetSim, TemplatePin]:
    """A converged fleet running web-0 from generation 1 (256Mi), and the pin it recorded."""
    sim = FleetSim.of("host-a")
    plans = converge(sim, desired_of(*base(template("256Mi", 1), web())), POLICY)
    assert plans[-1].empty
    pin = plans[-1].verdicts[KEY].fields["template"]
    return sim, pin


def test_the_first_plan_records_the_template_version_in_the_verdict() -> None:
    _, pin = created_from_first_version()
    assert (pin.name, pin.generation) == ("small", 1)
    assert pin.spec.memory == 256 * MIB


def test_a_changed_template_leaves_a_pinned_vm_alone_and_says_so() -> None:
    sim, pin = created_from_first_version()
    desired = desired_of(*base(template("512Mi", 2), web(pin)))
    assert expand(desired).vms["web-0"].spec.memory == 256 * MIB
    p = plan(desired, sim.observed(), POLICY)
    assert p.empty
    verdict = p.verdicts[KEY]
    assert verdict.ready
    assert verdict.fields["template"] == pin
    assert verdict.message.endswith(
        "Template/small is at generation 2; this VM keeps generation 1 "
        "(set spec.templateFollow: true to take the change)"
    )


def test_a_following_vm_takes_the_change_and_its_pin_moves_on() -> None:
    sim, pin = created_from_first_version()
    desired = desired_of(*base(template("512Mi", 2), web(pin, templateFollow=True)))
    assert expand(desired).vms["web-0"].spec.memory == 512 * MIB
    p = plan(desired, sim.observed(), POLICY)
    assert not p.empty
    assert {a.target for a in p.actions} == {KEY}
    new_pin = p.verdicts[KEY].fields["template"]
    assert (new_pin.generation, new_pin.spec.memory) == (2, 512 * MIB)
    assert "templateFollow" not in p.verdicts[KEY].message


def test_a_new_vm_gets_the_current_template() -> None:
    desired = desired_of(*base(template("512Mi", 2), web()))
    assert expand(desired).vms["web-0"].spec.memory == 512 * MIB


def test_a_pin_of_another_template_is_not_used() -> None:
    _, pin = created_from_first_version()
    other = pin.model_copy(update={"name": "large"})
    desired = desired_of(*base(template("512Mi", 2), web(other)))
    assert expand(desired).vms["web-0"].spec.memory == 512 * MIB
    assert expand(desired).vms["web-0"].template.generation == 2
