"""V2V: bring VMs over from VMware (.vmx + .vmdk, .ova) and Xen (xl/xm config + disk)."""

from controller.v2v.importer import ImportReport, import_vm
from controller.v2v.model import SourceDisk, SourceNic, SourceVM, V2VError

__all__ = ["ImportReport", "SourceDisk", "SourceNic", "SourceVM", "V2VError", "import_vm"]
