"""Libvirt domain XML from a DomainSpec and back (xml.etree, never string formatting).

`build_domain` assembles one builder per element; `parse_domain` reads a domain XML
(persistent or live, as libvirt returns it, with its added defaults) back into a
DomainSpec such that `parse_domain(build_domain(spec)) == spec`.
Units are converted in one place: `_kib` / `_mib`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from agentapi import DiskSpec, DomainSpec, NicSpec

CORRAL_NS = "https://corral.dev/xmlns/domain/v1"
ET.register_namespace("corral", CORRAL_NS)

_C = f"{{{CORRAL_NS}}}"


def _kib(mib: int) -> str:
    return str(mib * 1024)


def _mib(element: ET.Element | None) -> int | None:
    """Return an XML memory quantity in MiB (libvirt writes KiB unless `unit` says otherwise)."""
    if element is None or element.text is None:
        return None
    factor = {"b": 1, "bytes": 1, "k": 1024, "kib": 1024, "m": 1 << 20, "mib": 1 << 20}.get(
        element.get("unit", "KiB").lower(), 1 << 30
    )
    return int(element.text) * factor // (1 << 20)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: v for k, v in attrs.items() if v is not None})
    if text is not None:
        element.text = text
    return element


# --- builders --------------------------------------------------------------------------------


def build_metadata(spec: DomainSpec) -> ET.Element:
    """Return Corral's metadata block.

    <metadata>
      <corral:vm xmlns:corral="https://corral.dev/xmlns/domain/v1">
        <corral:ha priority="50">true</corral:ha>
        <corral:hooks><corral:hook name="add_description"/></corral:hooks>
        <corral:labels><corral:label key="corral.dev/vm" value="web-1"/></corral:labels>
      </corral:vm>
    </metadata>

    Every element is in Corral's namespace: the shape libvirt's setMetadata stores.
    """
    metadata = ET.Element("metadata")
    metadata.append(build_corral_vm(spec, _C))
    return metadata


def build_corral_vm(spec: DomainSpec, ns: str = "") -> ET.Element:
    """Return Corral's metadata root element, its tags prefixed with `ns` ("{uri}").

    Without `ns` it is the form setMetadata takes (libvirt namespaces it itself).
    """
    vm = ET.Element(f"{ns}vm")
    _sub(vm, f"{ns}ha", "true" if spec.ha else "false", priority=str(spec.ha_priority))
    hooks = _sub(vm, f"{ns}hooks")
    for name in spec.hooks:
        _sub(hooks, f"{ns}hook", name=name)
    labels = _sub(vm, f"{ns}labels")
    for key, value in sorted(spec.labels.items()):
        _sub(labels, f"{ns}label", key=key, value=value)
    return vm


def build_memory(spec: DomainSpec) -> list[ET.Element]:
    """Return <memory> (boot-time maximum) and <currentMemory> (balloon target), in KiB.

    <memory unit='KiB'>262144</memory>
    <currentMemory unit='KiB'>131072</currentMemory>
    """
    memory = ET.Element("memory", unit="KiB")
    memory.text = _kib(spec.max_memory_mib or spec.memory_mib)
    current = ET.Element("currentMemory", unit="KiB")
    current.text = _kib(spec.memory_mib)
    return [memory, current]


def build_vcpu(spec: DomainSpec) -> ET.Element:
    """Return the vCPU element; `current` only when fewer than the maximum are online.

    <vcpu placement='static' current='1'>4</vcpu>
    """
    vcpu = ET.Element("vcpu", placement="static")
    if spec.max_vcpus is not None:
        vcpu.set("current", str(spec.vcpus))
    vcpu.text = str(spec.max_vcpus or spec.vcpus)
    return vcpu


def build_os(spec: DomainSpec) -> ET.Element:
    """Return the boot block: firmware, direct kernel boot and boot device order.

    <os firmware='efi'>
      <type arch='x86_64' machine='pc'>hvm</type>
      <kernel>/boot/vmlinuz</kernel><initrd>/boot/initrd</initrd>
      <cmdline>console=ttyS0</cmdline>
      <boot dev='hd'/>
    </os>
    """
    os_el = ET.Element("os")
    if spec.firmware == "uefi":
        os_el.set("firmware", "efi")
    _sub(os_el, "type", "hvm", arch=spec.arch, machine=spec.machine)
    if spec.kernel:
        _sub(os_el, "kernel", spec.kernel)
    if spec.initrd:
        _sub(os_el, "initrd", spec.initrd)
    if spec.cmdline:
        _sub(os_el, "cmdline", spec.cmdline)
    for device in spec.boot_order:
        _sub(os_el, "boot", dev=device)
    return os_el


def build_features() -> ET.Element:
    """Return the machine features; ACPI is what makes a graceful shutdown possible.

    <features><acpi/><apic/></features>
    """
    features = ET.Element("features")
    _sub(features, "acpi")
    _sub(features, "apic")
    return features


def build_disk(disk: DiskSpec) -> ET.Element:
    """Return one disk, from a host file or a pool volume.

    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='none'/>
      <source file='/var/lib/corral/images/web-1.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    or <disk type='volume' ...><source pool='images' volume='web-1'/> ... <readonly/>
    """
    kind = "file" if disk.path is not None else "volume"
    element = ET.Element("disk", type=kind, device=disk.device)
    _sub(element, "driver", name="qemu", type=disk.format, cache=disk.cache)
    if disk.path is not None:
        _sub(element, "source", file=disk.path)
    else:
        _sub(element, "source", pool=disk.pool, volume=disk.volume)
    _sub(element, "target", dev=disk.target, bus=disk.bus)
    if disk.readonly:
        _sub(element, "readonly")
    return element


def build_nic(nic: NicSpec) -> ET.Element:
    """Return one interface on a libvirt network or a host bridge.

    <interface type='network'>
      <mac address='52:54:00:12:34:56'/>
      <source network='default'/>
      <model type='virtio'/>
    </interface>
    """
    kind = "network" if nic.network is not None else "bridge"
    element = ET.Element("interface", type=kind)
    if nic.mac is not None:
        _sub(element, "mac", address=nic.mac)
    if nic.network is not None:
        _sub(element, "source", network=nic.network)
    else:
        _sub(element, "source", bridge=nic.bridge)
    _sub(element, "model", type=nic.model)
    return element


def build_serial(spec: DomainSpec) -> list[ET.Element]:
    """Return the serial port on a pty (attachable as the console), logged to a file if set.

    <serial type='pty'>
      <log file='/var/log/libvirt/qemu/web-1.serial.log' append='on'/>
      <target port='0'/>
    </serial>
    <console type='pty'><target type='serial' port='0'/></console>

    QEMU copies everything the guest prints into the log file while the pty stays
    free for `virDomainOpenConsole`; append keeps a restarted or migrated-in guest
    from truncating what was logged before.
    """
    serial = ET.Element("serial", type="pty")
    console = ET.Element("console", type="pty")
    if spec.serial_log_path:
        _sub(serial, "log", file=spec.serial_log_path, append="on")
    _sub(serial, "target", port="0")
    _sub(console, "target", type="serial", port="0")
    return [serial, console]


def build_graphics(spec: DomainSpec) -> ET.Element | None:
    """Return a VNC/SPICE display listening on loopback only, or None (the default).

    <graphics type='vnc' autoport='yes'><listen type='address' address='127.0.0.1'/></graphics>
    """
    if spec.graphics == "none":
        return None
    graphics = ET.Element("graphics", type=spec.graphics, autoport="yes")
    _sub(graphics, "listen", type="address", address="127.0.0.1")
    return graphics


def build_memballoon(spec: DomainSpec) -> ET.Element:
    """Return the balloon: virtio when memory may change live (max_memory_mib set), else none.

    <memballoon model='virtio'/>
    """
    return ET.Element("memballoon", model="virtio" if spec.max_memory_mib else "none")


def build_devices(spec: DomainSpec) -> ET.Element:
    """Return <devices>: disks, NICs, serial console, graphics and balloon, in that order."""
    devices = ET.Element("devices")
    devices.extend(build_disk(disk) for disk in spec.disks)
    devices.extend(build_nic(nic) for nic in spec.nics)
    devices.extend(build_serial(spec))
    graphics = build_graphics(spec)
    if graphics is not None:
        devices.append(graphics)
    devices.append(build_memballoon(spec))
    return devices


def build_domain_element(spec: DomainSpec) -> ET.Element:
    """Return the <domain> element for `spec` (see build_domain)."""
    domain = ET.Element("domain", type=spec.domain_type)
    _sub(domain, "name", spec.name)
    _sub(domain, "uuid", spec.uuid)
    if spec.description is not None:
        _sub(domain, "description", spec.description)
    domain.append(build_metadata(spec))
    domain.extend(build_memory(spec))
    domain.append(build_vcpu(spec))
    domain.append(build_os(spec))
    domain.append(build_features())
    _sub(domain, "clock", offset="utc")
    # A crashed guest stays off (destroy) so the controller sees it and applies the run
    # strategy; a guest reboot stays a reboot.
    _sub(domain, "on_poweroff", "destroy")
    _sub(domain, "on_reboot", "restart")
    _sub(domain, "on_crash", "destroy")
    domain.append(build_devices(spec))
    return domain


def build_domain(spec: DomainSpec) -> str:
    """Return the domain XML document for `spec`, indented."""
    domain = build_domain_element(spec)
    ET.indent(domain)
    return ET.tostring(domain, encoding="unicode") + "\n"


# --- parser ----------------------------------------------------------------------------------


class DomainXMLError(ValueError):
    """Domain XML that is not a domain Corral can describe (missing name, uuid or memory)."""


def parse_metadata(root: ET.Element) -> tuple[bool, int, list[str], dict[str, str]]:
    """Return (ha, ha_priority, hooks, labels) from Corral's metadata (defaults if absent)."""
    vm = root.find(f"metadata/{_C}vm")
    if vm is None:
        return False, 50, [], {}
    ha_el = vm.find(f"{_C}ha")
    ha = ha_el is not None and (ha_el.text or "").strip() == "true"
    priority = int(ha_el.get("priority", "50")) if ha_el is not None else 50
    hooks = sorted(h.get("name", "") for h in vm.findall(f"{_C}hooks/{_C}hook"))
    labels = {
        label.get("key", ""): label.get("value", "")
        for label in vm.findall(f"{_C}labels/{_C}label")
    }
    return ha, priority, hooks, labels


def parse_disk(element: ET.Element) -> DiskSpec:
    """Return the DiskSpec of one <disk> element."""
    source = element.find("source")
    driver = element.find("driver")
    target = element.find("target")
    src = source.attrib if source is not None else {}
    return DiskSpec(
        target=target.get("dev", "") if target is not None else "",
        path=src.get("file") or src.get("dev"),
        pool=src.get("pool"),
        volume=src.get("volume"),
        format=driver.get("type", "raw") if driver is not None else "raw",
        bus=target.get("bus", "virtio") if target is not None else "virtio",
        device=element.get("device", "disk"),
        readonly=element.find("readonly") is not None,
        cache=driver.get("cache") if driver is not None else None,
    )


def parse_nic(element: ET.Element) -> NicSpec:
    """Return the NicSpec of one <interface> element."""
    source = element.find("source")
    src = source.attrib if source is not None else {}
    mac = element.find("mac")
    model = element.find("model")
    return NicSpec(
        network=src.get("network") if element.get("type") == "network" else None,
        bridge=src.get("bridge") if element.get("type") == "bridge" else None,
        model=model.get("type", "virtio") if model is not None else "virtio",
        mac=mac.get("address") if mac is not None else None,
    )


def _text(root: ET.Element, path: str) -> str | None:
    element = root.find(path)
    return element.text if element is not None else None


def _serial_log_path(serial: ET.Element | None) -> str | None:
    """Return where the serial port is logged: its <log file> (pty), or its file source."""
    if serial is None:
        return None
    log = serial.find("log")
    if log is not None and log.get("file"):
        return log.get("file")
    source = serial.find("source")
    if serial.get("type") == "file" and source is not None:
        return source.get("path")
    return None


def parse_domain_element(root: ET.Element) -> DomainSpec:
    """Return the DomainSpec described by a parsed <domain> element."""
    name, uuid = _text(root, "name"), _text(root, "uuid")
    memory, current = _mib(root.find("memory")), _mib(root.find("currentMemory"))
    if not name or not uuid or memory is None:
        raise DomainXMLError("domain XML lacks name, uuid or memory")
    balloon = root.find("devices/memballoon")
    has_balloon = balloon is not None and balloon.get("model", "none") != "none"
    vcpu = root.find("vcpu")
    vcpu_max = int(vcpu.text or "1") if vcpu is not None else 1
    vcpu_current = vcpu.get("current") if vcpu is not None else None
    os_el = root.find("os")
    os_type = os_el.find("type") if os_el is not None else None
    firmware = "bios"
    if os_el is not None and (
        os_el.get("firmware") == "efi" or os_el.find("loader[@type='pflash']") is not None
    ):
        firmware = "uefi"
    serial = root.find("devices/serial")
    serial_path = _serial_log_path(serial)
    graphics = root.find("devices/graphics")
    ha, ha_priority, hooks, labels = parse_metadata(root)
    return DomainSpec(
        name=name,
        uuid=uuid,
        vcpus=int(vcpu_current) if vcpu_current else vcpu_max,
        max_vcpus=vcpu_max if vcpu_current else None,
        memory_mib=current if current is not None else memory,
        max_memory_mib=memory if has_balloon else None,
        domain_type=root.get("type", "qemu"),
        machine=os_type.get("machine") if os_type is not None else None,
        arch=os_type.get("arch", "x86_64") if os_type is not None else "x86_64",
        firmware=firmware,
        kernel=_text(root, "os/kernel"),
        initrd=_text(root, "os/initrd"),
        cmdline=_text(root, "os/cmdline"),
        boot_order=[b.get("dev", "hd") for b in root.findall("os/boot")] or ["hd"],
        disks=[parse_disk(d) for d in root.findall("devices/disk")],
        nics=[parse_nic(n) for n in root.findall("devices/interface")],
        serial_log_path=serial_path,
        graphics=graphics.get("type", "none") if graphics is not None else "none",
        ha=ha,
        ha_priority=ha_priority,
        labels=labels,
        hooks=hooks,
        description=_text(root, "description"),
    )


def parse_domain(xml: str) -> DomainSpec:
    """Return the DomainSpec described by domain XML; DomainXMLError if it cannot be read."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise DomainXMLError(f"not well-formed XML: {exc}") from exc
    if root.tag != "domain":
        raise DomainXMLError(f"expected <domain>, got <{root.tag}>")
    return parse_domain_element(root)


def domain_identity(xml: str) -> tuple[str | None, str | None]:
    """Return (name, uuid) of domain XML, or (None, None) if it is not a <domain>."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return None, None
    if root.tag != "domain":
        return None, None
    return _text(root, "name"), _text(root, "uuid")
