"""What an importer read from a foreign VM description, before it becomes manifests."""

from __future__ import annotations

from dataclasses import dataclass, field


class V2VError(Exception):
    """A foreign VM cannot be imported; `source` names the file, `field` the setting."""

    def __init__(self, source: str, message: str, field: str | None = None) -> None:
        where = f"{source}: {field}: " if field else f"{source}: "
        super().__init__(where + message)
        self.source = source
        self.field = field


@dataclass(frozen=True)
class SourceDisk:
    """One disk of the foreign VM: its image file, as found, and the bus it sat on."""

    path: str
    bus: str = "virtio"
    cdrom: bool = False


@dataclass(frozen=True)
class SourceNic:
    """One NIC of the foreign VM: the network (VMware port group, Xen bridge) and model."""

    network: str | None
    model: str = "virtio"
    mac: str | None = None


@dataclass
class SourceVM:
    """A foreign VM as read from its configuration; `warnings` list what does not carry over."""

    name: str
    cpus: int
    memory_mib: int
    firmware: str = "bios"
    disks: list[SourceDisk] = field(default_factory=list)
    nics: list[SourceNic] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    origin: str = ""
