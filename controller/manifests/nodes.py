"""YAML text -> node trees (with positions) -> plain data; and locating a path in a tree.

ruamel.yaml composes each document into nodes that carry the line and column of every key
and value (with its libyaml-based C parser when ruamel.yaml.clib is installed: about 25
times faster than the pure-Python one). Tags are left unresolved by the parser and scalars
are typed here, in one pass, by the YAML 1.2 core schema: `no` stays a string, `0x1F` is an
int, timestamps are strings (pydantic parses them where a datetime is meant).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.tag import Tag

from controller.manifests.result import Limits, Loc

try:
    from _ruamel_yaml import CParser
except ImportError:  # pragma: no cover - ruamel.yaml.clib is a declared dependency
    CParser = None

_IMPLICIT = "?"
_IMPLICIT_TAG = Tag(suffix=_IMPLICIT)  # one shared instance: no allocation per node
_STR_TAG = "tag:yaml.org,2002:str"
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_INT_RE = re.compile(r"[-+]?[0-9]+\Z")
_FLOAT_RE = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_SPECIAL_FLOATS = {
    f"{sign}.{word}": float(f"{sign}inf")
    for sign in ("", "+", "-")
    for word in ("inf", "Inf", "INF")
} | {".nan": float("nan"), ".NaN": float("nan"), ".NAN": float("nan")}


class _NoResolver:
    """Leaves every implicit tag unresolved: scalars are typed by `_plain_scalar` instead.

    Resolving here would cost a regex search per scalar and follow YAML 1.1 rules in the C
    parser; explicit tags (`!!str 1`) still reach the nodes unchanged.
    """

    def __init__(self, version: Any = None, loader: Any = None) -> None:
        self.loader = loader
        self._loader_version = version

    def descend_resolver(self, *args: Any) -> None:
        return None

    def ascend_resolver(self, *args: Any) -> None:
        return None

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Tag:
        return _IMPLICIT_TAG

    @property
    def processing_version(self) -> tuple[int, int]:
        return (1, 2)


if CParser is not None:

    class _CComposer(CParser, _NoResolver):  # type: ignore[misc, valid-type]
        """libyaml-based composer producing ruamel nodes with marks and unresolved tags."""


def iter_documents(text: str, *, pure: bool = False) -> Iterator[Node]:
    """Yield the root node of every document in `text`, one at a time.

    Raises ruamel.yaml's MarkedYAMLError (with `problem_mark`) at a syntax error, after the
    documents before it. `pure` forces the pure-Python parser (used without ruamel.yaml.clib).
    """
    if CParser is not None and not pure:
        parser = _CComposer(text)
        try:
            while parser.check_node():
                yield parser.get_node()
        finally:
            parser.dispose()
        return
    yaml = YAML(typ="safe", pure=True)
    yaml.Resolver = _NoResolver
    yield from yaml.compose_all(text)


def is_empty_document(node: Node) -> bool:
    """Return True for a document that holds nothing (only `---` or comments)."""
    return (
        isinstance(node, ScalarNode)
        and node.value == ""
        and node.style in (None, "")
        and _tag(node) == _IMPLICIT
    )


def position(node: Node) -> tuple[int, int]:
    """Return a node's 1-based (line, column)."""
    mark = node.start_mark
    return mark.line + 1, mark.column + 1


def _tag(node: Node) -> str:
    ctag = node.ctag
    return _IMPLICIT if ctag is None or ctag is _IMPLICIT_TAG else str(ctag)


class NodeProblem(Exception):
    """A node that cannot become manifest data (bad tag, duplicate key, too deep)."""

    def __init__(self, node: Node, type_: str, message: str) -> None:
        super().__init__(message)
        self.node = node
        self.type = type_
        self.message = message


def _plain_scalar(value: str) -> Any:
    """Return a plain scalar typed by the YAML 1.2 core schema."""
    if not value:
        return None
    first = value[0]
    if first in "0123456789+-.":
        if _INT_RE.match(value):
            return int(value)
        if value.startswith("0x"):
            with contextlib.suppress(ValueError):
                return int(value[2:], 16)
        if value.startswith("0o"):
            with contextlib.suppress(ValueError):
                return int(value[2:], 8)
        if _FLOAT_RE.match(value):
            return float(value)
        return _SPECIAL_FLOATS.get(value, value)
    if value in _NULLS:
        return None
    if value in _BOOLS:
        return _BOOLS[value]
    return value


_CORE_TAGS = {
    "tag:yaml.org,2002:int": (int,),
    "tag:yaml.org,2002:float": (int, float),
    "tag:yaml.org,2002:bool": (bool,),
    "tag:yaml.org,2002:null": (type(None),),
}


def _scalar(node: ScalarNode) -> Any:
    """Return a scalar node's value: implicit (plain) ones typed, quoted ones strings."""
    tag = _tag(node)
    value = node.value
    if tag == _IMPLICIT:
        return _plain_scalar(value) if node.style in (None, "") else value
    if tag == _STR_TAG:
        return value
    expected = _CORE_TAGS.get(tag)
    if expected is None:
        raise NodeProblem(node, "yaml_tag", f"unsupported YAML tag {tag}")
    typed = _plain_scalar(value)
    if type(typed) not in expected:
        raise NodeProblem(node, "yaml_tag", f"{value!r} is not a valid {tag}")
    return float(typed) if float in expected else typed


_PLAIN_STYLES = (None, "")
_MISSING = object()
_PLAIN_CACHE: dict[str, Any] = {}
_PLAIN_CACHE_MAX = 50_000


def _plain_cached(value: str) -> Any:
    """Return `_plain_scalar(value)`, memoised: keys and most values repeat across objects."""
    typed = _PLAIN_CACHE.get(value, _MISSING)
    if typed is _MISSING:
        typed = _plain_scalar(value)
        if len(_PLAIN_CACHE) >= _PLAIN_CACHE_MAX:
            _PLAIN_CACHE.clear()
        _PLAIN_CACHE[value] = typed
    return typed


class DocumentConverter:
    """Turns one document's node tree into plain data, collecting every node problem.

    This is the hot loop of a load (it visits every node once), so scalars are handled
    inline and limits are checked once per collection, not once per node.
    """

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.root: Node | None = None
        self.nodes = 0
        self.problems: list[NodeProblem] = []

    def convert(self, node: Node, depth: int = 0) -> Any:
        """Return the plain data of `node`; raise NodeProblem when a limit is exceeded."""
        if node.__class__ is ScalarNode:
            if node.ctag is _IMPLICIT_TAG:
                if node.style in _PLAIN_STYLES:
                    return _plain_cached(node.value)
                return node.value
            try:
                return _scalar(node)
            except NodeProblem as problem:
                self.problems.append(problem)
                return None
        if self.root is None:
            self.root = node
        self.nodes += len(node.value) + 1
        if self.nodes > self.limits.max_nodes_per_document:
            raise NodeProblem(
                self.root,
                "too_large",
                f"document expands to more than {self.limits.max_nodes_per_document} "
                "nodes (aliases?)",
            )
        if depth >= self.limits.max_depth:
            raise NodeProblem(
                node, "too_deep", f"document nests deeper than {self.limits.max_depth} levels"
            )
        if node.__class__ is MappingNode:
            return self._mapping(node, depth + 1)
        if node.__class__ is SequenceNode:
            self._check_tag(node, _SEQ_TAG)
            return [self.convert(item, depth + 1) for item in node.value]
        raise NodeProblem(node, "yaml_syntax", f"unexpected YAML node {type(node).__name__}")

    def _check_tag(self, node: Node, allowed: str) -> None:
        if node.ctag is not _IMPLICIT_TAG:
            tag = _tag(node)
            if tag not in (_IMPLICIT, allowed):
                self.problems.append(NodeProblem(node, "yaml_tag", f"unsupported YAML tag {tag}"))

    def _mapping(self, node: MappingNode, depth: int) -> dict[str, Any]:
        self._check_tag(node, _MAP_TAG)
        out: dict[str, Any] = {}
        merges: list[Node] = []
        convert = self.convert
        cache = _PLAIN_CACHE
        for key_node, value_node in node.value:
            # Inline fast path for the common plain-scalar key and value.
            if key_node.ctag is _IMPLICIT_TAG and key_node.__class__ is ScalarNode:
                key = key_node.value
                if key_node.style in _PLAIN_STYLES:
                    key = cache.get(key, _MISSING)
                    if key is _MISSING:
                        key = _plain_cached(key_node.value)
            else:
                key = convert(key_node, depth)
            if key.__class__ is not str:
                if key is None and key_node.__class__ is not ScalarNode:
                    continue  # a problem deeper inside the key is already recorded
                shown = key_node.value if key_node.__class__ is ScalarNode else "a collection"
                self.problems.append(
                    NodeProblem(
                        key_node, "key_type", f"a key must be a string, got {shown}; quote it"
                    )
                )
                continue
            if key in out or (key == "<<" and _is_merge_key(key_node)):
                if key == "<<" and _is_merge_key(key_node):
                    merges.append(value_node)
                    continue
                self._duplicate(node, key_node, key)
                continue
            if (
                value_node.ctag is _IMPLICIT_TAG
                and value_node.__class__ is ScalarNode
                and value_node.style in _PLAIN_STYLES
            ):
                value = cache.get(value_node.value, _MISSING)
                out[key] = _plain_cached(value_node.value) if value is _MISSING else value
            else:
                out[key] = convert(value_node, depth)
        for merge in merges:
            self._merge(out, merge, depth)
        return out

    def _duplicate(self, mapping: MappingNode, key_node: Node, key: str) -> None:
        first = next(k for k, _ in mapping.value if k.__class__ is ScalarNode and k.value == key)
        line, column = position(first)
        self.problems.append(
            NodeProblem(
                key_node,
                "duplicate_key",
                f'key "{key}" is already set at line {line}, column {column}',
            )
        )

    def _merge(self, out: dict[str, Any], merge: Node, depth: int) -> None:
        """Fill `out` with the keys of a `<<` merge it does not set itself."""
        sources = merge.value if merge.__class__ is SequenceNode else [merge]
        for source in sources:
            data = self.convert(source, depth)
            if not isinstance(data, dict):
                self.problems.append(
                    NodeProblem(source, "yaml_syntax", "a merge key (<<) needs a mapping")
                )
                continue
            for key, value in data.items():
                out.setdefault(key, value)


def _is_merge_key(node: Node) -> bool:
    return (
        node.__class__ is ScalarNode
        and node.value == "<<"
        and node.style in (None, "")
        and _tag(node) == _IMPLICIT
    )


def _pairs(node: MappingNode) -> Iterator[tuple[Node, Node]]:
    """Yield a mapping's own key/value nodes, then those merged in with `<<`."""
    merges = []
    for key, value in node.value:
        if _is_merge_key(key):
            merges.append(value)
        else:
            yield key, value
    for merge in merges:
        for source in merge.value if isinstance(merge, SequenceNode) else [merge]:
            if isinstance(source, MappingNode):
                yield from _pairs(source)


def locate(root: Node, loc: Loc, *, at_key: bool = False) -> tuple[int, int]:
    """Return the 1-based (line, column) that `loc` points at in a document's node tree.

    A value's own position for a wrong value (a scalar or flow collection); the key's
    position for a block collection, for `at_key` (unknown or missing fields), and for a
    path that does not exist, the nearest existing parent's key.
    """
    key: Node | None = None
    node = root
    found = True
    for seg in loc:
        if seg == "[key]":
            at_key = True
            continue
        if isinstance(node, MappingNode) and isinstance(seg, str):
            match = next(
                ((k, v) for k, v in _pairs(node) if isinstance(k, ScalarNode) and k.value == seg),
                None,
            )
            if match is None:
                found = False
                break
            key, node = match
        elif isinstance(node, SequenceNode) and isinstance(seg, int) and 0 <= seg < len(node.value):
            key, node = None, node.value[seg]
        else:
            found = False
            break
    use_key = key is not None and (
        at_key or not found or not (isinstance(node, ScalarNode) or node.flow_style is True)
    )
    mark = (key if use_key else node).start_mark
    return mark.line + 1, mark.column + 1
