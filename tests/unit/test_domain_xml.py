"""Domain XML builders against golden files, and parse(build(spec)) == spec."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentapi import DiskSpec, DomainSpec, NicSpec, diff_domain_specs
from nodeagent.domxml import build_domain, parse_domain

DATA = Path(__file__).resolve().parent.parent / "data"

SPECS = {
    "minimal": DomainSpec(
        name="minimal", uuid="00000000-0000-4000-8000-000000000001", vcpus=1, memory_mib=80
    ),
    "tiny-guest": DomainSpec(
        name="tiny-1",
        uuid="00000000-0000-4000-8000-000000000002",
        vcpus=1,
        max_vcpus=2,
        memory_mib=96,
        max_memory_mib=256,
        kernel="/var/cache/corral/guest/vmlinuz",
        initrd="/var/cache/corral/guest/initrd.gz",
        cmdline="console=ttyS0 panic=-1",
        nics=[NicSpec(network="default", mac="52:54:00:aa:00:02")],
        serial_log_path="/var/log/libvirt/qemu/tiny-1.serial.log",
        ha=True,
        ha_priority=80,
        labels={"corral.dev/vm": "tiny-1", "corral.dev/generation": "3"},
        hooks=["add_description"],
    ),
    "uefi-installer": DomainSpec(
        name="installer",
        uuid="00000000-0000-4000-8000-000000000003",
        vcpus=2,
        memory_mib=2048,
        domain_type="kvm",
        machine="q35",
        firmware="uefi",
        boot_order=["cdrom", "hd"],
        disks=[
            DiskSpec(
                target="sda",
                path="/var/lib/corral/images/inst.raw",
                format="raw",
                bus="sata",
                cache="writeback",
            ),
            DiskSpec(
                target="sdb",
                path="/srv/iso/debian.iso",
                format="raw",
                bus="sata",
                device="cdrom",
                readonly=True,
            ),
        ],
        nics=[NicSpec(bridge="br0", model="e1000")],
        graphics="vnc",
        description="installer with a display",
    ),
    "pool-disks": DomainSpec(
        name="db-1",
        uuid="00000000-0000-4000-8000-000000000004",
        vcpus=4,
        memory_mib=4096,
        disks=[
            DiskSpec(target="vda", pool="images", volume="db-1-root.qcow2", cache="none"),
            DiskSpec(target="vdb", pool="fast", volume="db-1-data", format="raw"),
        ],
        nics=[NicSpec(network="frontend"), NicSpec(network="backend", model="rtl8139")],
        graphics="spice",
        boot_order=["hd", "network"],
    ),
}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_build_matches_golden_file(name):
    golden = DATA / f"domain-{name}.xml"
    xml = build_domain(SPECS[name])
    if os.environ.get("CORRAL_UPDATE_GOLDEN"):
        golden.write_text(xml)
    assert xml == golden.read_text()


@pytest.mark.parametrize("name", sorted(SPECS))
def test_parse_inverts_build(name):
    assert parse_domain(build_domain(SPECS[name])) == SPECS[name]


def test_memballoon_follows_max_memory():
    assert '<memballoon model="virtio" />' in build_domain(SPECS["tiny-guest"])
    assert '<memballoon model="none" />' in build_domain(SPECS["minimal"])


def test_libvirt_defaults_are_not_drift():
    desired = SPECS["pool-disks"]
    observed = desired.model_copy(
        update={
            "machine": "pc-i440fx-7.2",
            "nics": [n.model_copy(update={"mac": "52:54:00:12:34:56"}) for n in desired.nics],
        }
    )
    assert diff_domain_specs(desired, observed) == []
    assert diff_domain_specs(desired, observed.model_copy(update={"memory_mib": 64})) == [
        "memory_mib"
    ]


names = st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True)
texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=30)


@st.composite
def domain_specs(draw: st.DrawFn) -> DomainSpec:
    vcpus = draw(st.integers(1, 8))
    memory = draw(st.integers(16, 8192))
    kernel = draw(st.none() | st.just("/boot/vmlinuz"))
    disks = [
        DiskSpec(
            target=f"vd{chr(97 + i)}",
            path=f"/img/{i}.qcow2",
            cache=draw(st.none() | st.just("none")),
        )
        for i in range(draw(st.integers(0, 3)))
    ]
    return DomainSpec(
        name=draw(names),
        uuid=str(draw(st.uuids())),
        vcpus=vcpus,
        max_vcpus=draw(st.none() | st.integers(vcpus, 16)),
        memory_mib=memory,
        max_memory_mib=draw(st.none() | st.integers(memory, 16384)),
        kernel=kernel,
        cmdline=draw(st.none() | texts) if kernel else None,
        disks=disks,
        nics=[NicSpec(network=draw(names)) for _ in range(draw(st.integers(0, 2)))],
        serial_log_path=draw(st.none() | st.just("/var/log/s.log")),
        graphics=draw(st.sampled_from(["none", "vnc", "spice"])),
        ha=draw(st.booleans()),
        ha_priority=draw(st.integers(0, 100)),
        labels=draw(st.dictionaries(names, texts, max_size=3)),
        hooks=draw(st.lists(names, max_size=2)),
        description=draw(st.none() | texts),
    )


@settings(max_examples=40, deadline=None)
@given(domain_specs())
def test_round_trip_any_spec(spec):
    assert parse_domain(build_domain(spec)) == spec
