"""OVF envelopes: what export writes parses back equal; bad descriptors name the part."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from controller.ovf import OvfDisk, OvfError, OvfSystem, build_envelope, parse_envelope
from controller.ovf.envelope import NAMESPACES

SYSTEM = OvfSystem(
    name="web-1",
    cpus=2,
    memory_bytes=512 * 2**20,
    disks=[
        OvfDisk("root", "root.qcow2", "qcow2", 16 * 2**20, 1_234_567),
        OvfDisk("data", "data.img", "raw", 2**30, 2**30),
    ],
    networks=["lan"],
    description="a web server",
    kernel="/boot/vmlinuz",
    initrd="/boot/initrd.img",
    cmdline="console=ttyS0",
)


def test_an_envelope_parses_back_to_the_same_system() -> None:
    assert parse_envelope(build_envelope(SYSTEM)) == SYSTEM


def test_the_hardware_section_uses_cim_resource_types() -> None:
    root = ET.fromstring(build_envelope(SYSTEM))
    items = root.findall("ovf:VirtualSystem/ovf:VirtualHardwareSection/ovf:Item", NAMESPACES)
    kinds = [(i.findtext("rasd:ResourceType", None, NAMESPACES),
              i.findtext("rasd:VirtualQuantity", None, NAMESPACES)
              or i.findtext("rasd:HostResource", None, NAMESPACES)
              or i.findtext("rasd:Connection", None, NAMESPACES)) for i in items]  # fmt: skip
    assert kinds == [
        ("3", "2"),
        ("4", "512"),
        ("20", None),
        ("17", "ovf:/disk/disk-root"),
        ("17", "ovf:/disk/disk-data"),
        ("10", "lan"),
    ]
    refs = root.findall("ovf:References/ovf:File", NAMESPACES)
    assert [f.get(f"{{{NAMESPACES['ovf']}}}href") for f in refs] == ["root.qcow2", "data.img"]
    boot = root.find("ovf:VirtualSystem/corral:BootSection", NAMESPACES)
    assert boot is not None and boot.get(f"{{{NAMESPACES['ovf']}}}required") == "false"


def test_a_system_without_kernel_boot_has_no_corral_section() -> None:
    plain = OvfSystem(name="db", cpus=1, memory_bytes=2**30)
    text = build_envelope(plain)
    assert "BootSection" not in text
    assert parse_envelope(text) == plain


def _broken(old: str, new: str) -> str:
    text = build_envelope(SYSTEM)
    assert old in text
    return text.replace(old, new, 1)


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        pytest.param("<Envelope", "descriptor", "not well-formed XML", id="not-xml"),
        pytest.param("<Envelope/>", "descriptor", "not an OVF 2 Envelope", id="not-ovf"),
        pytest.param(
            _broken('ovf:fileRef="file-root"', 'ovf:fileRef="file-nope"'),
            "DiskSection/Disk[disk-root]/@ovf:fileRef",
            "'file-nope' is not in References",
            id="disk-names-missing-file",
        ),
        pytest.param(
            _broken("interop/qcow2.html", "vmdk"),
            "DiskSection/Disk[disk-root]/@ovf:format",
            "unsupported disk format",
            id="unsupported-format",
        ),
        pytest.param(
            _broken('ovf:capacity="16777216"', 'ovf:capacity="big"'),
            "DiskSection/Disk[disk-root]/@ovf:capacity",
            "expected a whole number, got 'big'",
            id="bad-capacity",
        ),
        pytest.param(
            _broken(
                "<rasd:VirtualQuantity>2</rasd:VirtualQuantity>",
                "<rasd:VirtualQuantity>0</rasd:VirtualQuantity>",
            ),
            "VirtualHardwareSection/Item[1]/rasd:VirtualQuantity",
            "must be positive, got 0",
            id="zero-cpus",
        ),
        pytest.param(
            _broken("ovf:/disk/disk-data", "ovf:/disk/disk-gone"),
            "VirtualHardwareSection/Item[5]/rasd:HostResource",
            "names no Disk",
            id="drive-names-missing-disk",
        ),
        pytest.param(
            _broken(
                "<rasd:ResourceType>4</rasd:ResourceType>",
                "<rasd:ResourceType>5</rasd:ResourceType>",
            ),
            "VirtualHardwareSection",
            "has no memory item",
            id="no-memory",
        ),
    ],
)
def test_a_bad_descriptor_names_what_is_wrong(text: str, where: str, message: str) -> None:
    with pytest.raises(OvfError) as caught:
        parse_envelope(text)
    assert caught.value.where == where
    assert message in str(caught.value)
