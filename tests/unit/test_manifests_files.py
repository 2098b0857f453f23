"""Which files a load reads and how: limits, symlinks, encodings, order; nothing written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from controller.manifests import Limits, load_paths, load_text
from controller.manifests.nodes import iter_documents

NETWORK = (
    "apiVersion: corral.dev/v1alpha1\nkind: Network\nmetadata:\n  name: {name}\n"
    "spec:\n  mode: isolated\n"
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_directory_is_walked_sorted_recursively_and_hidden_entries_are_skipped(
    tmp_path: Path,
) -> None:
    write(tmp_path / "b.yaml", NETWORK.format(name="b"))
    write(tmp_path / "a.yml", NETWORK.format(name="a"))
    two = NETWORK.format(name="c") + "---\n" + NETWORK.format(name="d")
    write(tmp_path / "sub" / "c.yaml", two)
    write(tmp_path / "notes.txt", "not a manifest")
    write(tmp_path / ".github" / "ci.yaml", "on: push\n")
    result = load_paths([tmp_path], root=tmp_path)
    assert result.errors == []
    assert result.files == ["a.yml", "b.yaml", "sub/c.yaml"]
    assert [(o.ref, str(o.origin)) for o in result.objects] == [
        ("Network/a", "a.yml:1:1"),
        ("Network/b", "b.yaml:1:1"),
        ("Network/c", "sub/c.yaml:1:1"),
        ("Network/d", "sub/c.yaml:8:1"),
    ]
    assert result.objects[3].origin.document == 1


def test_ten_megabyte_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("w") as handle:
        handle.write(NETWORK.format(name="big"))
        handle.write("# " + "x" * 100 + "\n" * 1 + ("# padding\n" * 1_000_000))
    assert big.stat().st_size > 10_000_000
    result = load_paths([big], root=tmp_path)
    assert [str(e) for e in result.errors] == [
        f"big.yaml: file is {big.stat().st_size} bytes, over the limit of 5242880: "
        "split it into smaller files"
    ]
    assert result.errors[0].type == "too_large"
    assert result.objects == []


def test_size_limit_is_configurable(tmp_path: Path) -> None:
    write(tmp_path / "n.yaml", NETWORK.format(name="n"))
    result = load_paths([tmp_path], root=tmp_path, limits=Limits(max_file_bytes=10))
    assert [e.type for e in result.errors] == ["too_large"]


def test_more_objects_than_the_limit_are_refused(tmp_path: Path) -> None:
    write(tmp_path / "n.yaml", "---\n".join(NETWORK.format(name=f"n{i}") for i in range(5)))
    result = load_paths([tmp_path], root=tmp_path, limits=Limits(max_objects=3))
    assert [str(e) for e in result.errors] == [
        "n.yaml:22:1: Network/n3: more than 3 objects: the rest is not loaded"
    ]
    assert len(result.objects) == 3


def test_symlink_escaping_the_root_is_reported_and_not_read(tmp_path: Path) -> None:
    outside = write(tmp_path / "outside" / "secret.yaml", NETWORK.format(name="secret"))
    repo = tmp_path / "repo"
    write(repo / "ok.yaml", NETWORK.format(name="ok"))
    (repo / "link.yaml").symlink_to(outside)
    (repo / "linkdir").symlink_to(outside.parent)
    (repo / "inside.yaml").symlink_to(repo / "ok.yaml")
    result = load_paths([repo], root=repo)
    assert [(e.file, e.type) for e in result.errors] == [
        ("link.yaml", "symlink_escape"),
        ("linkdir", "symlink_escape"),
    ]
    assert str(result.errors[0]) == (
        f"link.yaml: symlink leads outside {repo} (to {outside}): not read"
    )
    assert [(o.ref, o.origin.file) for o in result.objects] == [("Network/ok", "inside.yaml")]


def test_path_outside_the_root_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "a" / "n.yaml", NETWORK.format(name="n"))
    (tmp_path / "b").mkdir()
    result = load_paths(["../a/n.yaml"], root=tmp_path / "b")
    assert [e.type for e in result.errors] == ["symlink_escape"]
    assert result.objects == []


def test_symlink_loop_inside_the_root_ends(tmp_path: Path) -> None:
    write(tmp_path / "d" / "n.yaml", NETWORK.format(name="n"))
    (tmp_path / "d" / "again").symlink_to(tmp_path / "d")
    result = load_paths([tmp_path], root=tmp_path)
    assert result.errors == []
    assert [o.ref for o in result.objects] == ["Network/n"]


def test_non_utf8_file_is_reported_at_the_bad_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(NETWORK.format(name="n").encode() + b"  description: caf\xe9\n")
    result = load_paths([path], root=tmp_path)
    assert [str(e) for e in result.errors] == [
        "latin1.yaml:7:19: not UTF-8 text: byte 0xe9 cannot be decoded"
    ]


def test_utf8_bom_and_utf16_are_read(tmp_path: Path) -> None:
    (tmp_path / "bom.yaml").write_bytes(b"\xef\xbb\xbf" + NETWORK.format(name="a").encode())
    (tmp_path / "wide.yaml").write_bytes(NETWORK.format(name="b").encode("utf-16"))
    result = load_paths([tmp_path], root=tmp_path)
    assert result.errors == []
    assert [o.ref for o in result.objects] == ["Network/a", "Network/b"]


def test_missing_path_and_special_file_are_errors(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.yaml")
    result = load_paths([tmp_path / "nope.yaml", tmp_path / "pipe.yaml"])
    assert [(Path(e.file).name, e.type, e.line) for e in result.errors] == [
        ("nope.yaml", "not_found", None),
        ("pipe.yaml", "not_a_file", None),
    ]


def test_loading_modifies_no_file(tmp_path: Path) -> None:
    good = write(tmp_path / "good.yaml", NETWORK.format(name="n"))
    bad = write(tmp_path / "bad.yaml", "kind: Nope\n\tbroken: [\n")
    os.utime(good, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (good, bad)}
    load_paths([tmp_path])
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (good, bad)} == before


def test_yaml_features_that_are_allowed() -> None:
    text = (
        "x-defaults: &net {mode: isolated, mtu: 1500}\n"
        "---\n"
        "apiVersion: corral.dev/v1alpha1\nkind: Network\nmetadata:\n  name: a\n"
        "  labels: {norway: no, version: !!str 1.10, octal: '0o17'}\n"
        "spec: &spec\n  mode: isolated\n  mtu: !!int 0x5dc\n"
        "---\n"
        "apiVersion: corral.dev/v1alpha1\nkind: Network\nmetadata: {name: b}\n"
        "spec: {<<: {mode: isolated, mtu: 1500}, mtu: 9000}\n"
    )
    result = load_text(text, "f.yaml")
    assert [str(e) for e in result.errors] == [
        "f.yaml:1:1: apiVersion: required field is missing (use corral.dev/v1alpha1)",
        "f.yaml:1:1: kind: required field is missing (one of SchedulingPolicy, Host, Network, "
        "StoragePool, Volume, Template, AffinityGroup, VirtualMachine, Snapshot)",
    ]
    a, b = (o.resource for o in result.objects)
    assert a.metadata.labels == {"norway": "no", "version": "1.10", "octal": "0o17"}
    assert a.spec.mtu == 1500
    assert b.spec.mtu == 9000


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\nb: [x, {c: 'd'}]\n---\n- !!str 2\n- ~\n",
        "spec: &s {k: v}\nother: *s\nlist:\n  - a\n  -   b\n",
        "key: |\n  literal\n  text\nfolded: >\n  more\n  text\n",
    ],
)
def test_pure_and_c_parsers_give_the_same_nodes(text: str) -> None:
    def shape(node: object) -> object:
        value = node.value  # type: ignore[attr-defined]
        mark = node.start_mark  # type: ignore[attr-defined]
        if isinstance(value, str):
            return (value, mark.line, mark.column)
        return [shape(v) if not isinstance(v, tuple) else (shape(v[0]), shape(v[1])) for v in value]

    c_nodes = [shape(n) for n in iter_documents(text)]
    pure_nodes = [shape(n) for n in iter_documents(text, pure=True)]
    assert c_nodes == pure_nodes


def test_a_file_named_twice_is_read_once(tmp_path: Path) -> None:
    write(tmp_path / "n.yaml", NETWORK.format(name="n"))
    result = load_paths([tmp_path, tmp_path / "n.yaml"])
    assert result.errors == []
    assert [o.ref for o in result.objects] == ["Network/n"]
