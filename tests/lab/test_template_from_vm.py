"""`corral template create --from-vm` on the real libvirtd: a stopped VM's disk becomes a
flat base volume and a Template; a VM from that template boots from a thin clone of it.
A running VM, an unknown VM and an existing template name are refused."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest
from ruamel.yaml import YAML

from controller.cli.template import TemplateCommandError, create_from_vm
from controller.cli.volume import download, resolve, upload
from controller.lab.guest import GuestImage
from tests.e2e.e2ekit import wait_heartbeats
from tests.helpers.lab_fleet import LabFleet, lab_fleet, tiny_vm_fleet_yaml

pytestmark = pytest.mark.libvirtd

MIB = 2**20
PATTERN = b"\xcd" * MIB


@pytest.fixture
def fleet(system_libvirt: str, tiny_guest: GuestImage, tmp_path: Path) -> Iterator[LabFleet]:
    with lab_fleet(system_libvirt, tmp_path, "tpl", vm_suffix="src") as fleet:
        fleet.write(
            "fleet.yaml", tiny_vm_fleet_yaml(fleet, tiny_guest, "runStrategy: Halted", "nics: []")
        )
        yield fleet


def test_template_from_a_stopped_vm_and_a_vm_from_it_boots(fleet: LabFleet, tmp_path: Path) -> None:
    fleet.converge()
    assert fleet.conn.lookupByName(fleet.vm).state()[0] == libvirt.VIR_DOMAIN_SHUTOFF
    image = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "16M"], check=True)
    subprocess.run(["qemu-io", "-c", "write -P 0xcd 0 1M", str(image)], check=True,
                   capture_output=True)  # fmt: skip
    upload(resolve(fleet.store, fleet.agents, f"{fleet.pool_name}/{fleet.vm}-root", None), image)

    tpl = fleet.made.name("tpl")
    documents = create_from_vm(fleet.store, fleet.agents, tpl, fleet.vm)
    assert [(d["kind"], d["metadata"]["name"]) for d in documents] == [
        ("Volume", f"{tpl}-root"),
        ("Template", tpl),
    ]
    assert documents[0]["spec"] == {"pool": fleet.pool_name, "size": "16Mi", "format": "qcow2"}
    spec = documents[1]["spec"]
    assert spec["disks"] == [{"name": "root", "volume": f"{tpl}-root"}]
    assert (spec["cpus"], spec["memory"]) == (1, "96Mi")
    assert "placement" not in spec and "runStrategy" not in spec
    base = resolve(fleet.store, fleet.agents, f"{fleet.pool_name}/{tpl}-root", None)
    download(base, tmp_path / "base.img", "raw")
    assert (tmp_path / "base.img").read_bytes()[:MIB] == PATTERN

    clone_vm = fleet.made.domain(fleet.made.name("from-tpl"))
    with (fleet.dir / "template.yaml").open("w") as handle:
        YAML().dump_all(documents, handle)
    (fleet.dir / "vm.yaml").write_text(
        f"apiVersion: corral.dev/v1alpha1\nkind: VirtualMachine\n"
        f"metadata: {{name: {clone_vm}}}\nspec: {{template: {tpl}}}\n"
    )
    fleet.converge()
    wait_heartbeats(clone_vm, 2)
    clone = fleet.volume_path(f"{clone_vm}-root")
    chain = json.loads(
        subprocess.run(
            ["qemu-img", "info", "-U", "--backing-chain", "--output=json", clone],
            capture_output=True, text=True, check=True,
        ).stdout
    )  # fmt: skip
    assert [i["filename"] for i in chain] == [clone, fleet.volume_path(f"{tpl}-root")]
    status = fleet.store.get("VirtualMachine", clone_vm).obj.status
    assert status.template is not None and status.template.name == tpl

    with pytest.raises(TemplateCommandError, match=f"{clone_vm} is running on .*; stop it first"):
        create_from_vm(fleet.store, fleet.agents, "other", clone_vm)
    with pytest.raises(TemplateCommandError, match=f"Template/{tpl} already exists"):
        create_from_vm(fleet.store, fleet.agents, tpl, fleet.vm)
    with pytest.raises(TemplateCommandError, match="VirtualMachine/nope not found"):
        create_from_vm(fleet.store, fleet.agents, "other", "nope")
