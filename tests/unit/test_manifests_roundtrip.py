"""Property: every valid object survives model -> YAML -> load -> model unchanged."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from controller.manifests import load_text
from schemas.kinds import KINDS, AnyResource

names = st.from_regex(r"[a-z]([a-z0-9-]{0,14}[a-z0-9])?", fullmatch=True)
label_values = st.from_regex(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,10}[A-Za-z0-9])?)?", fullmatch=True)
labels = st.dictionaries(
    st.one_of(names, st.builds(lambda p, n: f"{p}.dev/{n}", names, names)), label_values, max_size=3
)
TRICKY = ["no", "True", "1.10", "0o17", "0x1F", "~", "null", ".inf", "-.INF", ".iNf", "1e3",
          "- x", "a: b", "#c", "'", '"', "2024-01-01", "<<", "", " lead", "trail ", "@x", "*a",
          "&a"]  # fmt: skip
texts = st.sampled_from(TRICKY) | st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")) | st.sampled_from("\n\t "),
    max_size=40,
)
sizes = st.one_of(
    st.integers(1, 2**50),
    st.builds(
        lambda n, unit: f"{n}{unit}",
        st.integers(1, 4096),
        st.sampled_from(["", "Ki", "Mi", "Gi", "Ti", "k", "M", "G"]),
    ),
)
memories = st.builds(lambda n, u: f"{n}{u}", st.integers(16, 4096), st.sampled_from(["Mi", "Gi"]))
millicpus = st.one_of(
    st.integers(0, 64), st.builds(lambda n: f"{n}m", st.integers(0, 64000)), st.sampled_from([0.5])
)
selectors = st.fixed_dictionaries(
    {},
    optional={
        "matchLabels": st.dictionaries(names, names, max_size=2),
        "matchExpressions": st.lists(
            st.fixed_dictionaries(
                {"key": names, "operator": st.sampled_from(["In", "NotIn", "Exists"])},
                optional={"values": st.lists(names, max_size=2)},
            ),
            max_size=2,
        ),
    },
)
times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda t: t.replace(microsecond=0).isoformat())
conditions = st.lists(
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["Ready", "Reconciling", "Stalled"]),
            "status": st.sampled_from(["True", "False", "Unknown"]),
            "reason": st.from_regex(r"[A-Z][A-Za-z0-9]{0,12}", fullmatch=True),
            "lastTransitionTime": times,
        },
        optional={"message": texts, "observedGeneration": st.integers(0, 10**6)},
    ),
    max_size=3,
)


def unique_by_name(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return list({item["name"]: item for item in items}.values())


disks = st.lists(
    st.fixed_dictionaries(
        {"name": names, "volume": names},
        optional={
            "bus": st.sampled_from(["virtio", "scsi", "sata", "ide"]),
            "readonly": st.booleans(),
            "cache": st.sampled_from(["none", "writeback", "unsafe"]),
        },
    ),
    max_size=3,
).map(unique_by_name)
nics = st.lists(
    st.fixed_dictionaries(
        {"name": names, "network": names},
        optional={
            "model": st.sampled_from(["virtio", "e1000", "rtl8139"]),
            "mac": st.from_regex(r"52:54:00(:[0-9a-f]{2}){3}", fullmatch=True),
        },
    ),
    max_size=2,
).map(unique_by_name)
vm_common = {
    "disks": disks,
    "nics": nics,
    "ha": st.fixed_dictionaries(
        {}, optional={"enabled": st.booleans(), "priority": st.integers(0, 100)}
    ),
    "placement": st.fixed_dictionaries({}, optional={"hostSelector": selectors, "host": names}),
    "migration": st.fixed_dictionaries(
        {},
        optional={
            "allowed": st.booleans(),
            "bandwidthMibps": st.integers(1, 10_000),
            "maxDowntimeMs": st.integers(10, 60_000),
        },
    ),
    "hooks": st.lists(names, max_size=2),
    "description": texts,
    "firmware": st.sampled_from(["bios", "uefi"]),
    "graphics": st.sampled_from(["none", "vnc", "spice"]),
    "boot": st.fixed_dictionaries({"order": st.lists(st.sampled_from(["hd", "cdrom"]))}),
}

SPECS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "Host": st.fixed_dictionaries(
        {"address": st.builds(lambda n: f"https://10.0.0.{n}:8470", st.integers(1, 254))},
        optional={
            "maintenance": st.booleans(),
            "virtualization": st.sampled_from(["kvm", "qemu"]),
            "reserved": st.fixed_dictionaries({}, optional={"cpu": millicpus, "memory": sizes}),
            "fencing": st.one_of(
                st.fixed_dictionaries({"leaseTtlS": st.integers(2, 600)}),
                st.fixed_dictionaries(
                    {"method": st.just("ipmi"), "address": st.just("10.1.0.1")},
                    optional={"username": names, "passwordFile": st.just("/etc/corral/bmc")},
                ),
            ),
        },
    ),
    "Network": st.one_of(
        st.fixed_dictionaries(
            {
                "mode": st.sampled_from(["nat", "isolated"]),
                "ipv4": st.builds(
                    lambda a, b, dhcp: {
                        "cidr": f"10.{a}.{b}.0/24",
                        **(
                            {"dhcp": {"start": f"10.{a}.{b}.10", "end": f"10.{a}.{b}.99"}}
                            if dhcp
                            else {}
                        ),
                    },
                    st.integers(0, 255),
                    st.integers(0, 255),
                    st.booleans(),
                ),
            },
            optional={"mtu": st.integers(576, 9216), "hostSelector": selectors},
        ),
        st.fixed_dictionaries(
            {"mode": st.just("bridge"), "bridge": st.from_regex(r"br[0-9]{1,3}", fullmatch=True)},
            optional={"vlan": st.integers(1, 4094)},
        ),
    ),
    "StoragePool": st.one_of(
        st.fixed_dictionaries(
            {"type": st.just("dir"), "path": st.builds(lambda n: f"/var/lib/{n}", names)},
            optional={"hostSelector": selectors},
        ),
        st.fixed_dictionaries(
            {
                "type": st.just("netfs"),
                "path": st.just("/mnt/pool"),
                "shared": st.just(True),
                "source": st.just({"host": "10.0.0.1", "path": "/srv/nfs"}),
            }
        ),
    ),
    "Volume": st.fixed_dictionaries(
        {"pool": names, "size": sizes},
        optional={"source": st.one_of(st.fixed_dictionaries({"volume": names}))},
    ),
    "Template": st.fixed_dictionaries({}, optional={"cpus": st.integers(1, 64), **vm_common}),
    "VirtualMachine": st.fixed_dictionaries(
        {"cpus": st.integers(1, 8), "memory": memories},
        optional={
            "runStrategy": st.sampled_from(["Always", "RerunOnFailure", "Manual", "Halted"]),
            "template": names,
            "maxCpus": st.integers(8, 64),
            **vm_common,
        },
    ),
    "Snapshot": st.fixed_dictionaries(
        {"vm": names}, optional={"description": texts, "memory": st.booleans()}
    ),
    "AffinityGroup": st.fixed_dictionaries(
        {
            "vms": st.lists(names, min_size=1, max_size=3),
            "vmRule": st.fixed_dictionaries(
                {"polarity": st.sampled_from(["positive", "negative"])},
                optional={"enforcement": st.sampled_from(["hard", "soft"])},
            ),
        },
        optional={"vmSelector": selectors},
    ),
    "SchedulingPolicy": st.fixed_dictionaries(
        {},
        optional={
            "hostSelector": selectors,
            "filters": st.lists(st.sampled_from(["CPU", "Memory", "Affinity"]), unique=True),
            "weights": st.lists(
                st.fixed_dictionaries(
                    {"name": st.sampled_from(["Spread", "Pack"]), "factor": st.integers(1, 100)}
                ),
                max_size=2,
            ),
            "balancer": st.fixed_dictionaries(
                {"type": st.sampled_from(["None", "EvenDistribution", "PowerSaving"])},
                optional={"powerSavingHours": st.just("22:00-06:00")},
            ),
            "overcommit": st.fixed_dictionaries(
                {"cpuRatio": st.sampled_from([1.0, 1.5, 4.0, 16.25])}
            ),
            "haRestartMarginS": st.integers(1, 600),
        },
    ),
}
STATUSES: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "VirtualMachine": st.fixed_dictionaries(
        {"conditions": conditions},
        optional={
            "phase": st.sampled_from(["Pending", "Running", "Migrating"]),
            "host": names,
            "ips": st.lists(st.just("10.0.0.5"), max_size=1),
            "lastStarted": times,
        },
    ),
    "Host": st.fixed_dictionaries(
        {"conditions": conditions},
        optional={
            "phase": st.sampled_from(["Up", "Maintenance"]),
            "vms": st.integers(0, 500),
            "capacity": st.fixed_dictionaries({"cpu": millicpus, "memory": sizes}),
        },
    ),
}


@st.composite
def resources(draw: st.DrawFn, kind: str) -> AnyResource:
    metadata = {"name": draw(names)}
    if draw(st.booleans()):
        metadata["labels"] = draw(labels)
    manifest = {
        "apiVersion": "corral.dev/v1alpha1",
        "kind": kind,
        "metadata": metadata,
        "spec": draw(SPECS[kind]),
    }
    if kind in STATUSES and draw(st.booleans()):
        manifest["status"] = draw(STATUSES[kind])
    return KINDS[kind].model_validate(manifest)


def to_yaml(resource: AnyResource) -> str:
    buffer = io.StringIO()
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.dump(resource.to_manifest(), buffer)
    return buffer.getvalue()


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(list(KINDS)).flatmap(resources))
def test_valid_object_round_trips_through_yaml(resource: AnyResource) -> None:
    text = to_yaml(resource)
    result = load_text(text, "roundtrip.yaml")
    objects = [o.resource for o in result.objects]
    errors = [e for e in result.errors if e.type != "reference"]
    assert errors == [], text
    assert objects == [resource], text


@settings(max_examples=15, deadline=None)
@given(st.lists(st.sampled_from(list(KINDS)).flatmap(resources), min_size=2, max_size=4))
def test_multi_document_files_keep_every_object_and_its_origin(
    items: list[AnyResource],
) -> None:
    unique = list({(r.kind, r.metadata.name): r for r in items}.values())
    text = "---\n".join(to_yaml(r) for r in unique)
    result = load_text(text, "many.yaml")
    assert [o.resource for o in result.objects] == unique
    lines = text.splitlines()
    for obj in result.objects:
        assert lines[obj.origin.line - 1].startswith("apiVersion:")
