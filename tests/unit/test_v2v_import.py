"""V2V imports of generated VMware (.vmx + vmdk, .ova) and Xen (xl config + raw disk) VMs:
the manifests, the converted qcow2 (qemu-img info), warnings, and bad input leaving nothing."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from controller.cli.main import app
from controller.manifests import load_text
from controller.v2v import V2VError, import_vm
from controller.v2v.vmware import parse_vmx
from controller.v2v.xen import parse_xl
from tests.helpers.services import require_program


@pytest.fixture(autouse=True)
def _qemu_img() -> None:
    require_program("libvirt", "qemu-img")


MIB = 1 << 20

VMX = """\
.encoding = "UTF-8"
displayName = "Web Server 1"
numvcpus = "2"
memsize = "1024"
firmware = "efi"
scsi0.present = "TRUE"
scsi0.virtualDev = "pvscsi"
scsi0:0.present = "TRUE"
scsi0:0.fileName = "web1.vmdk"
sata0:1.present = "TRUE"
sata0:1.deviceType = "cdrom-image"
sata0:1.fileName = "install.iso"
ethernet0.present = "TRUE"
ethernet0.virtualDev = "vmxnet3"
ethernet0.networkName = "VM Network"
ethernet0.address = "00:50:56:AA:BB:01"
ethernet1.present = "TRUE"
ethernet1.virtualDev = "e1000"
tools.syncTime = "TRUE"
"""

OVF = """<?xml version="1.0"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"
  xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"
  xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData">
  <References><File ovf:id="file1" ovf:href="db-disk1.vmdk"/></References>
  <DiskSection><Disk ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:capacity="8"/></DiskSection>
  <VirtualSystem ovf:id="db1">
    <Name>db1</Name>
    <VirtualHardwareSection>
      <Item><rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>4</rasd:VirtualQuantity></Item>
      <Item><rasd:ResourceType>4</rasd:ResourceType>
        <rasd:AllocationUnits>byte * 2^30</rasd:AllocationUnits>
        <rasd:VirtualQuantity>2</rasd:VirtualQuantity></Item>
      <Item><rasd:ResourceType>17</rasd:ResourceType><rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource></Item>
      <Item><rasd:ResourceType>10</rasd:ResourceType><rasd:ResourceSubType>E1000</rasd:ResourceSubType>
        <rasd:Connection>backend</rasd:Connection></Item>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
"""

XL = """\
# a Xen HVM guest
name = "mail-1"
builder = "hvm"
vcpus = 1
memory = 512
disk = [ 'format=raw, vdev=xvda, access=rw, target=mail.img',
         'file:/srv/iso/netinst.iso,hdc:cdrom,r' ]
vif = [ 'mac=00:16:3e:00:00:01,bridge=xenbr0' ]
"""


def qemu_img(*args: str) -> str:
    return subprocess.run(["qemu-img", *args], capture_output=True, text=True, check=True).stdout


def info(path: Path) -> dict:
    return json.loads(qemu_img("info", "--output=json", str(path)))


def load(path: Path) -> list[dict]:
    return list(YAML(typ="safe").load_all(path.read_text()))


@pytest.fixture
def vmware_dir(tmp_path: Path) -> Path:
    src = tmp_path / "vmware"
    src.mkdir()
    (src / "web1.vmx").write_text(VMX)
    qemu_img("create", "-q", "-f", "vmdk", str(src / "web1.vmdk"), "64M")
    return src


def test_vmware_directory_imports_into_manifests_and_qcow2(vmware_dir: Path, tmp_path: Path):
    out = tmp_path / "out"
    report = import_vm("vmware", vmware_dir, out, pool="images", network="lan")
    disk = out / "disks" / "web-server-1-disk0.qcow2"
    assert (report.vm, report.manifest, report.disks) == (
        "web-server-1",
        out / "web-server-1.yaml",
        [disk],
    )
    assert (info(disk)["format"], info(disk)["virtual-size"]) == ("qcow2", 64 * MIB)
    assert load(report.manifest) == [
        {
            "apiVersion": "corral.dev/v1alpha1",
            "kind": "Volume",
            "metadata": {"name": "web-server-1-disk0", "annotations": {
                "corral.dev/imported-from": f"vmware vmx {vmware_dir / 'web1.vmx'}"}},
            "spec": {"pool": "images", "size": "64Mi", "format": "qcow2",
                     "source": {"path": str(disk)}},
        },
        {
            "apiVersion": "corral.dev/v1alpha1",
            "kind": "VirtualMachine",
            "metadata": {"name": "web-server-1", "annotations": {
                "corral.dev/imported-from": f"vmware vmx {vmware_dir / 'web1.vmx'}"}},
            "spec": {
                "cpus": 2, "memory": "1Gi", "firmware": "uefi",
                "disks": [{"name": "disk0", "volume": "web-server-1-disk0", "bus": "scsi"}],
                "nics": [
                    {"name": "nic0", "network": "lan", "model": "virtio",
                     "mac": "00:50:56:aa:bb:01"},
                    {"name": "nic1", "network": "lan", "model": "e1000"},
                ],
                "runStrategy": "Manual",
            },
        },
    ]  # fmt: skip
    loaded = load_text(report.manifest.read_text(), str(report.manifest))
    # Valid as manifests; only the pool and network they name live elsewhere in the fleet.
    assert sorted(e.message for e in loaded.errors) == [
        "Network/lan is not defined",
        "Network/lan is not defined",
        "StoragePool/images is not defined",
    ]
    assert [r.kind for r in loaded.resources] == ["Volume", "VirtualMachine"]
    warnings = "\n".join(report.warnings)
    for expected in ("pvscsi", "vmxnet3", "VMware Tools", "install.iso", "virt-v2v"):
        assert expected in warnings
    assert "qemu-img convert to qcow2" in report.conversions[-1]


def test_ova_imports(tmp_path: Path):
    disk = tmp_path / "db-disk1.vmdk"
    qemu_img("create", "-q", "-f", "vmdk", "-o", "subformat=streamOptimized", str(disk), "32M")
    ova = tmp_path / "db1.ova"
    with tarfile.open(ova, "w") as tar:
        data = OVF.encode()
        member = tarfile.TarInfo("db1.ovf")
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data))
        tar.add(disk, arcname="db-disk1.vmdk")
    report = import_vm("vmware", ova, tmp_path / "out", pool="images", network="lan")
    vm, volume = load(report.manifest)[1], load(report.manifest)[0]
    assert (vm["spec"]["cpus"], vm["spec"]["memory"], vm["spec"]["nics"]) == (
        4, "2Gi", [{"name": "nic0", "network": "lan", "model": "e1000"}]
    )  # fmt: skip
    assert volume["spec"]["size"] == "32Mi"
    assert info(report.disks[0])["format"] == "qcow2"


def test_xen_config_imports(tmp_path: Path):
    (tmp_path / "mail.cfg").write_text(XL)
    qemu_img("create", "-q", "-f", "raw", str(tmp_path / "mail.img"), "16M")
    report = import_vm("xen", tmp_path / "mail.cfg", tmp_path / "out")
    vm = load(report.manifest)[-1]
    assert vm["spec"] == {
        "cpus": 1, "memory": "512Mi", "firmware": "bios",
        "disks": [{"name": "disk0", "volume": "mail-1-disk0", "bus": "virtio"}],
        "nics": [{"name": "nic0", "network": "default", "model": "virtio",
                  "mac": "00:16:3e:00:00:01"}],
        "runStrategy": "Manual",
    }  # fmt: skip
    assert (info(report.disks[0])["format"], info(report.disks[0])["virtual-size"]) == (
        "qcow2", 16 * MIB
    )  # fmt: skip
    assert any("netinst.iso" in w for w in report.warnings)
    assert any("xen-blkfront" in w for w in report.warnings)


def test_corrupt_vmdk_is_refused_and_nothing_remains(vmware_dir: Path, tmp_path: Path):
    (vmware_dir / "web1.vmdk").write_bytes(b"KDMV" + b"\xff" * 1000)
    out = tmp_path / "out"
    with pytest.raises(V2VError, match=r"web1\.vmdk: not a readable disk image"):
        import_vm("vmware", vmware_dir, out)
    assert list(out.rglob("*")) == [out / "disks"]


def test_existing_output_is_not_overwritten(vmware_dir: Path, tmp_path: Path):
    out = tmp_path / "out"
    import_vm("vmware", vmware_dir, out)
    before = (out / "web-server-1.yaml").read_text()
    with pytest.raises(V2VError, match="already exists"):
        import_vm("vmware", vmware_dir, out)
    assert (out / "web-server-1.yaml").read_text() == before
    assert sorted(p.name for p in (out / "disks").iterdir()) == ["web-server-1-disk0.qcow2"]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('displayName = "x"\nmemsize "512"\n', r"line 2: expected key = \"value\""),
        ('displayName = "x"\nmemsize = "lots"\n', "memsize: expected a whole number"),
        ('displayName = "x"\nscsi0:0.fileName = "a.vmdk"\n', "memsize: missing"),
        ('displayName = "x"\nmemsize = "512"\n', "the VM has no disk to import"),
    ],
    ids=["not-key-value", "bad-number", "no-memory", "no-disk"],
)
def test_malformed_vmx(text: str, error: str):
    with pytest.raises(V2VError, match=error):
        parse_vmx(text, "bad.vmx")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('name = "x"\nmemory = 512\ndisk = [ "a.img"\n', "line 3: unterminated list"),
        ('memory = 512\ndisk = ["a.img"]\n', "name: missing"),
        ('name = "x"\nmemory = 512\nvcpus = two\n', "vcpus: cannot read the value"),
    ],
    ids=["unterminated", "no-name", "bad-value"],
)
def test_malformed_xl(text: str, error: str):
    with pytest.raises(V2VError, match=error):
        parse_xl(text, "bad.cfg")


def test_cli_reports_conversions_warnings_and_errors(vmware_dir: Path, tmp_path: Path):
    runner = CliRunner()
    ok = runner.invoke(app, ["import", "vmware", str(vmware_dir), "--out", str(tmp_path / "o")])
    assert ok.exit_code == 0, ok.output
    assert "imported web-server-1" in ok.output and "qemu-img convert to qcow2" in ok.output
    assert "warning: virt-v2v is not installed" in ok.output or shutil.which("virt-v2v")
    bad = runner.invoke(app, ["import", "xen", str(tmp_path / "none.cfg")])
    assert bad.exit_code == 1
    assert "none.cfg: no such file" in bad.output and "nothing was imported" in bad.output
