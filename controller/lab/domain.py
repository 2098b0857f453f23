"""Libvirt domain XML for a tiny guest, for lab tests that talk to libvirt directly.

The node agent builds its own XML from a DomainSpec; this builder is the minimal, known-good
shape measured on the lab machine (see the builders' docstrings), used to test libvirtd, QEMU
and migration without the agent in the way.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from controller.lab.guest import MIN_MEMORY_MIB, GuestImage

TB_CACHE_MIB = 16
"""TCG translation cache size; 16 MiB cuts each guest's QEMU RSS from ~172 to ~146 MiB."""


def build_os(image: GuestImage) -> ET.Element:
    """Returns the direct kernel boot element:

    <os><type arch='x86_64'>hvm</type><kernel>K</kernel><initrd>I</initrd>
        <cmdline>console=ttyS0 panic=-1</cmdline></os>
    """
    os_el = ET.Element("os")
    ET.SubElement(os_el, "type", arch="x86_64").text = "hvm"
    ET.SubElement(os_el, "kernel").text = str(image.kernel)
    ET.SubElement(os_el, "initrd").text = str(image.initrd)
    ET.SubElement(os_el, "cmdline").text = image.cmdline
    return os_el


def build_features() -> ET.Element:
    """Returns the features; ACPI lets the guest see the power button (graceful shutdown):

    <features><acpi/><apic/><tcg><tb-cache unit='MiB'>16</tb-cache></tcg></features>
    """
    features = ET.Element("features")
    ET.SubElement(features, "acpi")
    ET.SubElement(features, "apic")
    tcg = ET.SubElement(features, "tcg")
    ET.SubElement(tcg, "tb-cache", unit="MiB").text = str(TB_CACHE_MIB)
    return features


def build_devices(serial_path: str) -> ET.Element:
    """Returns the devices: a file-backed serial console, its <console>, and no balloon:

    <devices><serial type='file'><source path='P'/><target port='0'/></serial>
      <console type='file'><source path='P'/><target type='serial' port='0'/></console>
      <memballoon model='none'/></devices>
    """
    devices = ET.Element("devices")
    serial = ET.SubElement(devices, "serial", type="file")
    ET.SubElement(serial, "source", path=serial_path)
    ET.SubElement(serial, "target", port="0")
    console = ET.SubElement(devices, "console", type="file")
    ET.SubElement(console, "source", path=serial_path)
    ET.SubElement(console, "target", type="serial", port="0")
    ET.SubElement(devices, "memballoon", model="none")
    return devices


def build_tiny_domain(
    name: str,
    image: GuestImage,
    serial_path: str,
    memory_mib: int = MIN_MEMORY_MIB,
    description: str | None = None,
) -> str:
    """Returns the XML of a one-vCPU TCG domain (type 'qemu'; KVM guests hang on the lab machine)
    booting `image` directly, its console going to the file `serial_path`.

    Raises ValueError if memory_mib is below the 80 MiB the guest needs to boot.
    """
    if memory_mib < MIN_MEMORY_MIB:
        raise ValueError(
            f"memory_mib: the tiny guest needs at least {MIN_MEMORY_MIB}, got {memory_mib}"
        )
    domain = ET.Element("domain", type="qemu")
    ET.SubElement(domain, "name").text = name
    if description is not None:
        ET.SubElement(domain, "description").text = description
    ET.SubElement(domain, "memory", unit="MiB").text = str(memory_mib)
    ET.SubElement(domain, "vcpu").text = "1"
    domain.append(build_os(image))
    domain.append(build_features())
    ET.SubElement(domain, "on_poweroff").text = "destroy"
    ET.SubElement(domain, "on_reboot").text = "restart"
    ET.SubElement(domain, "on_crash").text = "destroy"
    domain.append(build_devices(serial_path))
    return ET.tostring(domain, encoding="unicode")
