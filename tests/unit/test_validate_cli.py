"""`corral validate` and `corral schema` through the real typer app."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controller.cli.main import app
from controller.cli.validate import render_error
from controller.manifests import load_paths

REPO = Path(__file__).parents[2]
EXAMPLES = REPO / "examples" / "manifests"
BAD = REPO / "tests" / "data" / "manifests" / "bad"

runner = CliRunner()


def snapshot(directory: Path) -> dict[Path, tuple[bytes, int]]:
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in directory.rglob("*") if p.is_file()}


def test_valid_fleet_exits_0_with_a_one_line_summary() -> None:
    result = runner.invoke(app, ["validate", str(EXAMPLES)])
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "25 objects in 11 files are valid: 1 SchedulingPolicy, 3 Host, 2 Network, "
        "2 StoragePool, 6 Volume, 1 Template, 2 AffinityGroup, 7 VirtualMachine, 1 Snapshot\n"
    )


def test_errors_exit_1_one_per_line_without_colour(tmp_path: Path, monkeypatch) -> None:
    shutil.copytree(BAD, tmp_path / "bad")
    monkeypatch.chdir(tmp_path)
    loaded = load_paths(["bad"])
    expected = [str(e) for e in loaded.errors]
    result = runner.invoke(app, ["validate", "bad"])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == expected
    assert "\x1b[" not in result.output
    assert result.stderr.strip() == (
        f"{len(expected)} errors in 14 files ({len(loaded.objects)} valid objects in 14 files read)"
    )


def test_json_output_for_machines(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "apiVersion: corral.dev/v1alpha1\nkind: Volume\nmetadata:\n  name: v\n"
        "spec:\n  pool: p\n  size: 20 GB\n"
    )
    result = runner.invoke(app, ["validate", str(tmp_path / "a.yaml"), "-o", "json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["valid"] is False
    assert report["objects"] == []
    assert report["errors"] == [
        {
            "file": str(tmp_path / "a.yaml"),
            "line": 7,
            "column": 9,
            "object": "Volume/v",
            "loc": ["spec", "size"],
            "field": "spec.size",
            "type": "value_error",
            "message": 'expected a quantity like "20Gi" or "512Mi", got "20 GB"',
        }
    ]


def test_json_output_of_a_valid_fleet_lists_objects() -> None:
    result = runner.invoke(app, ["validate", "--output", "json", str(EXAMPLES)])
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["valid"] is True and report["errors"] == []
    assert len(report["objects"]) == 25
    first = report["objects"][0]
    assert (first["kind"], first["name"], first["line"], first["column"]) == (
        "AffinityGroup",
        "web-apart",
        5,
        1,
    )


def test_validate_changes_no_file(tmp_path: Path) -> None:
    shutil.copytree(BAD, tmp_path / "bad")
    shutil.copytree(EXAMPLES, tmp_path / "good")
    before = snapshot(tmp_path)
    runner.invoke(app, ["validate", str(tmp_path / "bad"), str(tmp_path / "good")])
    runner.invoke(app, ["validate", "-o", "json", str(tmp_path)])
    assert snapshot(tmp_path) == before


def test_missing_path_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stdout == f"{tmp_path / 'nope'}: no such file or directory\n"


def test_bad_output_format_is_a_usage_error() -> None:
    result = runner.invoke(app, ["validate", "-o", "xml", str(EXAMPLES)])
    assert result.exit_code == 2


def test_rendered_error_is_the_plain_line_with_styles() -> None:
    error = load_paths(["bad-quantity.yaml"], root=BAD).errors[0]
    text = render_error(error)
    assert text.plain == str(error)
    assert {span.style for span in text.spans} == {"bold", "cyan", "yellow", "red"}


def test_schema_writes_json_schemas_and_crds(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["schema", "--json-schema", str(tmp_path / "js"), "--crds", str(tmp_path / "crds")]
    )
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 18
    assert (tmp_path / "js" / "virtualmachine.json").read_text() == (
        REPO / "schemas" / "json" / "virtualmachine.json"
    ).read_text()
    assert (tmp_path / "crds" / "corral.dev_hosts.yaml").read_text() == (
        REPO / "deploy" / "crds" / "corral.dev_hosts.yaml"
    ).read_text()


@pytest.mark.parametrize("args", [["schema"], ["schema", "--bogus", "x"]])
def test_schema_needs_a_target(args: list[str]) -> None:
    assert runner.invoke(app, args).exit_code == 2
