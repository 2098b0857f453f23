"""Placement: scheduling new VMs, NoHostFits verdicts, kept copies, orphans left alone."""

from __future__ import annotations

from fleet_sim import FleetSim, desired_of, manifest, summary
from plan_fixtures import POLICY, converged, fleet, host, network, plan_after, pool, verdict, vm

from agentapi import DomainSpec, DomainState
from controller.plan import plan


def test_vm_that_fits_nowhere_is_pending_with_scheduler_reasons():
    objects = fleet(vm("huge", memory="64Gi"), hosts=("host-a", "host-b"))
    p = plan(desired_of(*objects), FleetSim.of("host-a", "host-b").observed(), POLICY)
    assert [a for a in summary(p) if a[1] == "VirtualMachine/huge"] == []
    v = p.verdicts[("VirtualMachine", "huge")]
    assert (v.ready, v.reason, v.stalled, v.fields["phase"]) == (
        False,
        "NoHostFits",
        True,
        "Pending",
    )
    assert v.message.startswith("No host has")
    assert [(h.host, h.fits) for h in v.fields["scheduling"]] == [
        ("host-a", False),
        ("host-b", False),
    ]
    assert "memory" in v.fields["scheduling"][0].reason


def test_selector_picks_the_labelled_host():
    objects = [
        host("host-a"),
        host("host-b", labels={"disk": "ssd"}),
        network(),
        pool(),
        *vm("db", placement={"hostSelector": {"matchLabels": {"disk": "ssd"}}}),
    ]
    p = plan(desired_of(*objects), FleetSim.of("host-a", "host-b").observed(), POLICY)
    assert [a[2] for a in summary(p) if a[1] == "VirtualMachine/db"] == ["host-b", "host-b"]


def test_batch_spreads_and_respects_capacity():
    vms = [vm(f"web-{i}", memory="6Gi") for i in range(5)]
    objects = fleet(*vms, hosts=("host-a", "host-b"))
    p = plan(
        desired_of(*objects), FleetSim.of("host-a", "host-b", memory_mib=16384).observed(), POLICY
    )
    defined = [a.host for a in p.actions if a.type.value == "DefineVM"]
    assert sorted(defined) == ["host-a", "host-a", "host-b", "host-b"]
    assert verdict(p, "VirtualMachine", "web-4") == (False, "NoHostFits", True)


def test_stopped_copy_elsewhere_is_stale_when_vm_runs():
    sim = converged(fleet(vm("web-1"), hosts=("host-a", "host-b")), "host-a", "host-b")
    home = sim.running()["web-1"][0]
    other = "host-b" if home == "host-a" else "host-a"
    dom = next(d for d in sim.hosts[home].state.domains if d.name == "web-1")
    sim.hosts[other].state.domains.append(
        dom.model_copy(update={"state": "shutoff", "reason": "destroyed", "live": None})
    )
    p = plan(desired_of(*fleet(vm("web-1"), hosts=("host-a", "host-b"))), sim.observed(), POLICY)
    assert summary(p) == [("UndefineVM", "VirtualMachine/web-1", other, "StaleCopy")]


def test_orphan_domain_is_reported_not_touched():
    def add_orphan(sim):
        spec = DomainSpec(
            name="old-vm",
            uuid="00000000-0000-0000-0000-000000000001",
            vcpus=1,
            memory_mib=64,
            labels={"corral.dev/vm": "old-vm"},
        )
        sim.hosts["host-a"].state.domains.append(
            DomainState(
                name="old-vm",
                uuid=spec.uuid,
                state="running",
                reason="booted",
                persistent=True,
                autostart=False,
                ha=False,
                spec=spec,
                live=spec,
                metadata={"corral.dev/vm": "old-vm"},
            )
        )

    _, p = plan_after(fleet(vm("web-1")), mutate=add_orphan)
    assert summary(p) == []
    v = p.verdicts[("Host", "host-a")]
    assert v.fields["orphans"] == ["old-vm"]
    assert "left alone: old-vm" in v.message


def test_unlabelled_foreign_domain_is_not_an_orphan():
    def add_foreign(sim):
        sim.hosts["host-a"].state.domains.append(
            DomainState(
                name="mine",
                uuid="00000000-0000-0000-0000-000000000002",
                state="running",
                reason="booted",
                persistent=True,
                autostart=False,
                ha=False,
            )
        )

    _, p = plan_after(fleet(vm("web-1")), mutate=add_foreign)
    assert summary(p) == []
    assert p.verdicts[("Host", "host-a")].fields["orphans"] == []


def test_missing_template_is_stalled_and_nothing_planned():
    objects = fleet(manifest("VirtualMachine", "web-1", {"template": "nope"}))
    p = plan(desired_of(*objects), FleetSim.of("host-a").observed(), POLICY)
    assert [a for a in summary(p) if a[1] == "VirtualMachine/web-1"] == []
    v = p.verdicts[("VirtualMachine", "web-1")]
    assert (v.ready, v.reason, v.stalled) == (False, "DependencyMissing", True)
    assert "Template/nope is not defined" in v.message


def test_template_without_size_names_the_missing_fields():
    objects = fleet(
        manifest("Template", "t", {"firmware": "uefi"}),
        manifest("VirtualMachine", "web-1", {"template": "t"}),
    )
    p = plan(desired_of(*objects), FleetSim.of("host-a").observed(), POLICY)
    v = p.verdicts[("VirtualMachine", "web-1")]
    assert (v.reason, v.stalled) == ("InvalidSpec", True)
    assert v.message.startswith("spec.cpus and spec.memory must be set")


def test_host_never_reached_is_pending_and_gets_nothing():
    sim = FleetSim.of("host-a")
    objects = fleet(vm("web-1"), hosts=("host-a", "host-z"))
    p = plan(desired_of(*objects), sim.observed(), POLICY)
    assert all(a.host != "host-z" for a in p.actions)
    assert verdict(p, "Host", "host-z") == (False, "HostPending", False)
    assert p.verdicts[("Host", "host-z")].fields["phase"] == "Pending"


def test_observed_host_not_desired_is_ignored():
    sim = FleetSim.of("host-a", "stray")
    p = plan(desired_of(*fleet(vm("web-1"))), sim.observed(), POLICY)
    assert all(a.host in ("host-a", None) for a in p.actions)
    assert ("Host", "stray") not in p.verdicts
