"""Every bad manifest gives every error, each at its exact file:line:column and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.manifests import load_paths, load_text

BAD = Path(__file__).parents[1] / "data" / "manifests" / "bad"

CASES: list[tuple[str, list[str], list[str]]] = [
    (
        "wrong-type.yaml",
        [
            "wrong-type.yaml:6:9: VirtualMachine/web-1: spec.cpus: expected a whole number of "
            'CPUs like 2, got "many"',
            "wrong-type.yaml:9:14: VirtualMachine/web-1: spec.ha.enabled: expected a valid "
            'boolean, unable to interpret input, got "maybe"',
            "wrong-type.yaml:10:15: VirtualMachine/web-1: spec.ha.priority: expected less than "
            "or equal to 100, got 101",
            'wrong-type.yaml:11:10: VirtualMachine/web-1: spec.disks: expected a list, got "root"',
        ],
        [],
    ),
    (
        "unknown-field.yaml",
        [
            "unknown-field.yaml:5:3: Volume/data: metadata.lables: unknown field; did you mean "
            '"labels"? (allowed: name, labels, annotations, generation, resourceVersion)',
            'unknown-field.yaml:9:3: Volume/data: spec.sise: unknown field; did you mean "size"? '
            "(allowed: pool, size, format, source)",
        ],
        [],
    ),
    (
        "bad-quantity.yaml",
        [
            'bad-quantity.yaml:15:9: Volume/data: spec.size: expected a quantity like "20Gi" or '
            '"512Mi", got "20 GB"',
            "bad-quantity.yaml:29:7: VirtualMachine/web-1: spec.disks[1].size: unknown field "
            "(allowed: name, volume, cdrom, bus, readonly, cache)",
            "bad-quantity.yaml:38:13: Host/host-a: spec.reserved.memory: expected a quantity "
            'like "20Gi" or "512Mi", got "20 GB"',
            "bad-quantity.yaml:39:10: Host/host-a: spec.reserved.cpu: expected a CPU quantity "
            'like 2 or "500m", got "lots"',
        ],
        ["StoragePool/local"],
    ),
    (
        "missing-reference.yaml",
        [
            "missing-reference.yaml:22:13: VirtualMachine/web-1: spec.template: Template/web is "
            "not defined",
            "missing-reference.yaml:27:15: VirtualMachine/web-1: spec.disks[1].volume: "
            "Volume/data-1 is not defined",
            "missing-reference.yaml:30:16: VirtualMachine/web-1: spec.nics[0].network: "
            "Network/lan is not defined",
            "missing-reference.yaml:41:15: VirtualMachine/web-2: spec.disks[0].volume: "
            "Volume/root-1 is already used writable by VirtualMachine/web-1; a disk can be "
            "attached to one VM (or mark both readonly) (VirtualMachine/web-1 is at "
            "missing-reference.yaml:17:1)",
        ],
        ["StoragePool/local", "Volume/root-1", "VirtualMachine/web-1", "VirtualMachine/web-2"],
    ),
    (
        "duplicate.yaml",
        [
            'duplicate.yaml:15:3: key "mtu" is already set at line 14, column 3',
            "duplicate.yaml:17:1: Network/lan: Network/lan is already defined at "
            "duplicate.yaml:1:1: names are unique per kind",
        ],
        ["Network/lan"],
    ),
    (
        "invalid-yaml.yaml",
        [
            "invalid-yaml.yaml:7:6: invalid YAML: did not find expected ',' or ']' "
            "(while parsing a flow sequence at line 6)"
        ],
        [],
    ),
    (
        "tabs.yaml",
        [
            "tabs.yaml:6:1: invalid YAML: a tab character: YAML indents with spaces only "
            "(while scanning for the next token at line 6)"
        ],
        [],
    ),
    ("empty.yaml", ["empty.yaml:1:1: file is empty: expected objects"], []),
    (
        "empty-document.yaml",
        [
            "empty-document.yaml:1:1: document 1 is empty: remove the extra '---' or add an object",
            "empty-document.yaml:10:1: document 3 is empty: remove the extra '---' or add an "
            "object",
        ],
        ["Network/lan"],
    ),
    (
        "api-version.yaml",
        [
            "api-version.yaml:1:13: Network/lan: apiVersion: unsupported apiVersion "
            '"corral.dev/v1": use corral.dev/v1alpha1',
            "api-version.yaml:8:1: Network/wan: apiVersion: required field is missing (use "
            "corral.dev/v1alpha1)",
        ],
        [],
    ),
    (
        "unknown-kind.yaml",
        [
            'unknown-kind.yaml:2:7: kind: unknown kind "VirtualMachin"; did you mean '
            '"VirtualMachine"?',
            "unknown-kind.yaml:7:1: kind: required field is missing (one of SchedulingPolicy, "
            "Host, Network, StoragePool, Volume, Template, AffinityGroup, VirtualMachine, "
            "Snapshot)",
            "unknown-kind.yaml:12:1: a document must be a mapping with apiVersion, kind, "
            "metadata and spec; got a list",
        ],
        [],
    ),
    (
        "names.yaml",
        [
            'names.yaml:4:9: Network/Web_1: metadata.name: name "Web_1" is not a DNS-1123 '
            "label: use lowercase letters, digits and '-', starting and ending with a letter "
            "or digit",
            'names.yaml:5:3: Network/Web_1: metadata.labels: label key "bad key!" is not a '
            "valid label key ([prefix/]name)",
            "names.yaml:12:1: metadata.name: required field is missing",
        ],
        [],
    ),
    (
        "rules.yaml",
        [
            "rules.yaml:8:11: Network/lan: spec.ipv4.cidr: expected an IPv4 subnet like "
            '"10.10.0.0/24", got "10.0.0.1/24" (10.0.0.1/24 has host bits set)',
            "rules.yaml:17:16: VirtualMachine/web-1: spec.runStrategy: expected 'Always', "
            "'RerunOnFailure', 'Manual' or 'Halted', got \"always\"",
            "rules.yaml:19:7: VirtualMachine/web-1: spec.disks[0]: set exactly one of volume "
            "or cdrom",
        ],
        [],
    ),
    (
        "yaml-features.yaml",
        [
            "yaml-features.yaml:6:5: a key must be a string, got 1; quote it",
            "yaml-features.yaml:9:9: unsupported YAML tag !Nat",
            "yaml-features.yaml:10:8: '15x0' is not a valid tag:yaml.org,2002:int",
            "yaml-features.yaml:17:7: invalid YAML: found undefined alias",
        ],
        [],
    ),
]


@pytest.mark.parametrize(
    ("fixture", "expected", "valid"), CASES, ids=[case[0].removesuffix(".yaml") for case in CASES]
)
def test_bad_manifest_reports_every_error_in_place(
    fixture: str, expected: list[str], valid: list[str]
) -> None:
    result = load_paths([fixture], root=BAD)
    assert [str(e) for e in result.errors] == expected
    assert [o.ref for o in result.objects] == valid
    assert result.files == [fixture]


def test_every_fixture_is_in_the_table() -> None:
    assert sorted(p.name for p in BAD.glob("*.yaml")) == sorted(c[0] for c in CASES)


def test_error_keeps_pydantic_structure() -> None:
    result = load_paths(["bad-quantity.yaml"], root=BAD)
    error = result.errors[0]
    assert (error.file, error.line, error.column) == ("bad-quantity.yaml", 15, 9)
    assert error.ref == "Volume/data"
    assert error.loc == ("spec", "size")
    assert error.field == "spec.size"
    assert error.type == "value_error"
    assert error.to_dict() == {
        "file": "bad-quantity.yaml",
        "line": 15,
        "column": 9,
        "object": "Volume/data",
        "loc": ["spec", "size"],
        "field": "spec.size",
        "type": "value_error",
        "message": 'expected a quantity like "20Gi" or "512Mi", got "20 GB"',
    }


VM_HEAD = "apiVersion: corral.dev/v1alpha1\nkind: VirtualMachine\nmetadata:\n  name: vm-1\n"

INLINE: list[tuple[str, str, list[tuple[int, int, str, str]]]] = [
    (
        "missing-field-points-at-nearest-parent",
        VM_HEAD + "spec:\n  cpus: 1\n  memory: 1Gi\n  disks:\n    - volume: v\n",
        [(9, 7, "spec.disks[0].name", "missing")],
    ),
    (
        "object-rule-points-at-its-key",
        VM_HEAD + "spec:\n  cpus: 1\n",
        [(5, 1, "spec", "value_error")],
    ),
    (
        "missing-spec-points-at-document",
        VM_HEAD,
        [(1, 1, "spec", "missing")],
    ),
    (
        "flow-mapping-value-error-points-at-value",
        VM_HEAD + "spec: {cpus: 1, memory: 1Gi, ha: {enabled: true, priority: -1}}\n",
        [(5, 60, "spec.ha.priority", "greater_than_equal")],
    ),
    (
        "label-value-type",
        "apiVersion: corral.dev/v1alpha1\nkind: Network\nmetadata:\n  name: n\n"
        "  labels:\n    zone: 1\nspec:\n  mode: isolated\n",
        [(6, 11, "metadata.labels.zone", "string_type")],
    ),
    (
        "dotted-label-key",
        "apiVersion: corral.dev/v1alpha1\nkind: Network\nmetadata:\n  name: n\n"
        "  labels:\n    corral.dev/zone: [a]\nspec:\n  mode: isolated\n",
        [(6, 22, 'metadata.labels["corral.dev/zone"]', "string_type")],
    ),
    (
        "snake-case-is-not-the-wire-format",
        VM_HEAD + "spec:\n  cpus: 1\n  memory: 1Gi\n  run_strategy: Always\n",
        [(8, 3, "spec.run_strategy", "extra_forbidden")],
    ),
    (
        "spec-not-a-mapping",
        VM_HEAD + "spec: 4\n",
        [(5, 7, "spec", "model_type")],
    ),
    (
        "nested-too-deep",
        VM_HEAD + "spec: " + "[" * 80 + "]" * 80 + "\n",
        [(5, 70, "", "too_deep")],
    ),
    (
        "alias-bomb",
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{n}: &{n} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
            for p, n in zip("abcdefg", "bcdefgh", strict=True)
        ),
        [(1, 1, "", "too_large")],
    ),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in INLINE], ids=[c[0] for c in INLINE])
def test_inline_manifest_errors(text: str, expected: list[tuple[int, int, str, str]]) -> None:
    result = load_text(text, "inline.yaml")
    assert [(e.line, e.column, e.field, e.type) for e in result.errors] == expected
    assert all(str(e).startswith(f"inline.yaml:{e.line}:{e.column}: ") for e in result.errors)
