"""Documents -> validated objects: dispatch on kind, pydantic, duplicates, references."""

from __future__ import annotations

import contextlib
import difflib
import gc
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import Node

from controller.manifests.files import display_name, iter_manifest_files, read_manifest_file
from controller.manifests.messages import describe_error, show
from controller.manifests.nodes import (
    DocumentConverter,
    NodeProblem,
    is_empty_document,
    iter_documents,
    locate,
    position,
)
from controller.manifests.result import (
    Limits,
    LoadedObject,
    LoadResult,
    Loc,
    ManifestError,
    Origin,
)
from schemas.kinds import KINDS
from schemas.meta import API_VERSION
from schemas.references import check_references

ObjectId = tuple[str, str]


@dataclass(frozen=True)
class _Document:
    file: str
    index: int
    root: Node


class _Load:
    """One load: accumulates objects and errors across files, then checks references."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.result = LoadResult()
        self.by_id: dict[ObjectId, LoadedObject] = {}
        self.invalid_ids: set[ObjectId] = set()
        self.texts: dict[str, str] = {}
        self.touched: dict[str, None] = {}  # every file named so far, in reading order
        self.count = 0
        self.stopped = False

    def error(
        self,
        file: str,
        where: tuple[int, int] | None,
        ref: str | None,
        loc: Loc,
        type_: str,
        message: str,
    ) -> None:
        line, column = where if where else (None, None)
        self.result.errors.append(ManifestError(file, line, column, ref, loc, type_, message))

    def add_text(self, text: str, file: str) -> None:
        """Parse, convert and validate every document of one file's text."""
        self.texts[file] = text
        self.result.files.append(file)
        self.touched.setdefault(file)
        if not text.strip():
            self.error(file, (1, 1), None, (), "empty_file", "file is empty: expected objects")
            return
        documents = 0
        try:
            for index, root in enumerate(iter_documents(text)):
                documents += 1
                if self.stopped:
                    return
                if is_empty_document(root):
                    self.error(
                        file,
                        _marker_before(text, root),
                        None,
                        (),
                        "empty_document",
                        f"document {index + 1} is empty: remove the extra '---' or add an object",
                    )
                    continue
                self._add_document(_Document(file, index, root))
        except MarkedYAMLError as exc:
            self._syntax_error(file, text, exc)
        except YAMLError as exc:
            self.error(file, (1, 1), None, (), "yaml_syntax", f"invalid YAML: {exc}")
        else:
            if documents == 0:
                self.error(file, (1, 1), None, (), "empty_file", "file holds only comments")

    def _syntax_error(self, file: str, text: str, exc: MarkedYAMLError) -> None:
        mark = exc.problem_mark or exc.context_mark
        where = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or "invalid YAML"
        if mark is not None:
            lines = text.splitlines()
            line = lines[mark.line] if mark.line < len(lines) else ""
            if "\t" in line[: mark.column + 1]:
                problem = "a tab character: YAML indents with spaces only"
        if exc.context and exc.context_mark is not None and exc.context_mark is not mark:
            problem += f" ({exc.context} at line {exc.context_mark.line + 1})"
        self.error(file, where, None, (), "yaml_syntax", f"invalid YAML: {problem}")

    def _add_document(self, doc: _Document) -> None:
        converter = DocumentConverter(self.limits)
        try:
            data = converter.convert(doc.root)
        except NodeProblem as problem:
            converter.problems.append(problem)
        if converter.problems:
            for problem in converter.problems:
                self.error(
                    doc.file, position(problem.node), None, (), problem.type, problem.message
                )
            return
        if not isinstance(data, dict):
            self.error(
                doc.file,
                position(doc.root),
                None,
                (),
                "not_a_mapping",
                "a document must be a mapping with apiVersion, kind, metadata and spec; "
                f"got {show(data)}",
            )
            return
        self._validate(doc, data)

    def _validate(self, doc: _Document, data: dict[str, Any]) -> None:
        """Validate one document's data against its kind and record the object or errors."""
        kind = data.get("kind")
        meta = data.get("metadata")
        name = meta.get("name") if isinstance(meta, dict) else None
        model = KINDS.get(kind) if isinstance(kind, str) else None
        ref = f"{kind}/{name}" if model is not None and isinstance(name, str) else None

        def report(loc: Loc, type_: str, message: str, *, at_key: bool = False) -> None:
            self.error(doc.file, locate(doc.root, loc, at_key=at_key), ref, loc, type_, message)

        api_ok = data.get("apiVersion") == API_VERSION
        if "apiVersion" not in data:
            report(("apiVersion",), "missing", f"required field is missing (use {API_VERSION})")
        elif not api_ok:
            report(
                ("apiVersion",),
                "bad_api_version",
                f"unsupported apiVersion {show(data['apiVersion'])}: use {API_VERSION}",
            )
        if "kind" not in data:
            report(("kind",), "missing", f"required field is missing (one of {', '.join(KINDS)})")
            return
        if model is None:
            close = difflib.get_close_matches(str(kind), list(KINDS), n=1)
            hint = f'; did you mean "{close[0]}"?' if close else ""
            report(("kind",), "unknown_kind", f"unknown kind {show(kind)}{hint}")
            return
        self.count += 1
        if self.count > self.limits.max_objects:
            report(
                (),
                "too_many_objects",
                f"more than {self.limits.max_objects} objects: the rest is not loaded",
            )
            self.stopped = True
            return
        try:
            resource = model.model_validate(data, by_alias=True, by_name=False)
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                loc = tuple(err["loc"])
                if loc != ("apiVersion",):  # already reported in its own words
                    at_key = err["type"] in ("extra_forbidden", "missing")
                    report(loc, err["type"], describe_error(err, model), at_key=at_key)
            if isinstance(name, str):
                self.invalid_ids.add((kind, name))
            return
        object_id = (resource.kind, resource.metadata.name)
        if not api_ok:
            self.invalid_ids.add(object_id)
            return
        first = self.by_id.get(object_id)
        if first is not None:
            report(
                (),
                "duplicate_object",
                f"{resource.ref} is already defined at {first.origin}: names are unique per kind",
            )
            return
        line, column = position(doc.root)
        loaded = LoadedObject(resource, Origin(doc.file, line, column, doc.index))
        self.by_id[object_id] = loaded
        self.result.objects.append(loaded)

    def finish(self) -> LoadResult:
        """Return the result with errors in reading order: by file, then line and column."""
        order = {name: index for index, name in enumerate(self.touched)}
        self.result.errors.sort(
            key=lambda e: (order.get(e.file, len(order)), e.line or 0, e.column or 0)
        )
        return self.result

    def check_references(self) -> None:
        """Add an error for every dangling reference or clash across the valid objects.

        A reference to an object that exists but has errors of its own is not reported
        again; a clash names the other object and where it is.
        """
        problems = check_references(self.result.resources)
        roots: dict[str, list[Node]] = {}
        for problem in problems:
            target = problem.target
            if target is not None and target in self.invalid_ids and target not in self.by_id:
                continue
            obj = self.by_id[problem.obj]
            origin = obj.origin
            if origin.file not in roots:
                roots[origin.file] = _documents_before_error(self.texts[origin.file])
            where = locate(roots[origin.file][origin.document], problem.loc)
            message = problem.message
            if target is not None and target in self.by_id and target != problem.obj:
                message += f" ({target[0]}/{target[1]} is at {self.by_id[target].origin})"
            self.error(origin.file, where, obj.ref, problem.loc, "reference", message)


def _documents_before_error(text: str) -> list[Node]:
    """Return the root nodes of `text` up to its first syntax error (already reported)."""
    roots: list[Node] = []
    with contextlib.suppress(YAMLError):
        roots.extend(iter_documents(text))
    return roots


def _marker_before(text: str, node: Node) -> tuple[int, int]:
    """Return the position of the `---` that opens an empty document (or the node's own)."""
    lines = text.splitlines()
    for index in range(min(node.start_mark.line, len(lines)) - 1, -1, -1):
        if lines[index].startswith("---"):
            return index + 1, 1
        if lines[index].strip() and not lines[index].lstrip().startswith("#"):
            break
    return position(node)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while many short-lived acyclic objects are built.

    Node trees, plain data and validated models hold no cycles; without the pause the
    collector runs hundreds of times per file and costs more than half the load time.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def load_paths(
    paths: Iterable[str | os.PathLike[str]],
    *,
    root: str | os.PathLike[str] | None = None,
    limits: Limits | None = None,
) -> LoadResult:
    """Return every valid object in the files and directories `paths`, and every error.

    Files are read in the order given, directories walked in sorted order (`*.yaml`,
    `*.yml`, hidden entries skipped); references are then checked across all of them.
    With `root`, nothing outside it is read (see `iter_manifest_files`). Nothing is written.
    """
    load = _Load(limits or Limits())
    shown_root = None if root is None else Path(root).resolve()
    read: set[Path] = set()
    with _gc_paused():
        for item in iter_manifest_files(paths, root):
            if isinstance(item, ManifestError):
                load.result.errors.append(item)
                load.touched.setdefault(item.file)
                continue
            if item.resolve() in read:
                continue  # named twice (a file and its directory): read once
            read.add(item.resolve())
            name = display_name(item, shown_root)
            text = read_manifest_file(item, name, load.limits)
            if isinstance(text, ManifestError):
                load.result.errors.append(text)
                load.result.files.append(name)
                load.touched.setdefault(name)
                continue
            load.add_text(text, name)
            if load.stopped:
                break
        load.check_references()
    return load.finish()


def load_text(text: str, filename: str = "<text>", *, limits: Limits | None = None) -> LoadResult:
    """Return the valid objects and the errors of one manifest text, named `filename`."""
    load = _Load(limits or Limits())
    with _gc_paused():
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > load.limits.max_file_bytes:
            load.error(
                filename,
                None,
                None,
                (),
                "too_large",
                f"text is {size} bytes, over the limit of {load.limits.max_file_bytes}",
            )
        else:
            load.add_text(text, filename)
        load.check_references()
    return load.finish()
