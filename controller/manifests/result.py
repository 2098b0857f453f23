"""Result types of a manifest load: objects with their origin, errors with their position."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from schemas.kinds import AnyResource

Loc = tuple[str | int, ...]
_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Limits:
    """Bounds that keep a hostile or broken repository from exhausting the controller."""

    max_file_bytes: int = 5 * 2**20
    max_objects: int = 100_000
    max_nodes_per_document: int = 100_000  # bounds alias expansion ("billion laughs")
    max_depth: int = 64


@dataclass(frozen=True)
class ManifestError:
    """One problem in the manifests: where it is, which object and field, what is wrong.

    `loc` is pydantic's location path in manifest (camelCase) terms, `type` pydantic's
    machine-readable error type or the loader's own (yaml_syntax, duplicate_object,
    unknown_kind, bad_api_version, reference, too_large, ...). `line` and `column` are
    1-based and None for problems with a whole file (not found, too large).
    """

    file: str
    line: int | None
    column: int | None
    ref: str | None
    loc: Loc
    type: str
    message: str

    @property
    def field(self) -> str:
        """Return the location as a dotted path: "spec.disks[1].size"."""
        return format_loc(self.loc)

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}:{self.column}"
        parts = [where]
        if self.ref:
            parts.append(self.ref)
        if self.loc:
            parts.append(self.field)
        return ": ".join([*parts, self.message])

    def to_dict(self) -> dict[str, Any]:
        """Return the error as JSON-ready data (the shape of `corral validate -o json`)."""
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "object": self.ref,
            "loc": list(self.loc),
            "field": self.field,
            "type": self.type,
            "message": self.message,
        }


@dataclass(frozen=True)
class Origin:
    """Where an object was written: file, 1-based line and column, document index in file."""

    file: str
    line: int
    column: int
    document: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class LoadedObject:
    """A validated object and the place it came from."""

    resource: AnyResource
    origin: Origin

    @property
    def ref(self) -> str:
        return self.resource.ref

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready summary: kind, name and origin."""
        return {
            "kind": self.resource.kind,
            "name": self.resource.metadata.name,
            "file": self.origin.file,
            "line": self.origin.line,
            "column": self.origin.column,
        }


@dataclass
class LoadResult:
    """Every object that validated and every error found; `files` lists the files read."""

    objects: list[LoadedObject] = field(default_factory=list)
    errors: list[ManifestError] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def resources(self) -> list[AnyResource]:
        return [o.resource for o in self.objects]


def format_loc(loc: Loc) -> str:
    """Return a location path in dotted form: ("spec", "disks", 1) -> "spec.disks[1]"."""
    out = ""
    for seg in loc:
        if isinstance(seg, int):
            out += f"[{seg}]"
        elif seg == "[key]":
            continue
        elif _IDENT_RE.match(seg):
            out += f".{seg}" if out else seg
        else:
            out += f'["{seg}"]'
    return out
