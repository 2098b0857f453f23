"""Fuzzing the manifest loader (hypothesis): any text, any YAML-shaped document, and
mutations of valid manifests either load or come back as ManifestErrors naming a place;
nothing else escapes, and nothing loads that the schema would refuse."""

from __future__ import annotations

import string
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from controller.manifests import LoadResult, load_paths, load_text
from schemas.kinds import KINDS

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples" / "manifests").rglob("*.yaml"))
FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["1Gi", "20 GB", "500m", "-1", "0", "../../etc/passwd", "\x00", "Always"]),
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(
            st.one_of(
                st.text(string.ascii_letters, min_size=1, max_size=12),
                st.sampled_from(["kind", "metadata", "spec", "name", "apiVersion", "labels"]),
            ),
            inner,
            max_size=6,
        ),
    ),
    max_leaves=30,
)


def check(result: LoadResult) -> None:
    """Every error names a file and a place; every loaded object re-validates."""
    for error in result.errors:
        assert str(error)
    for loaded in result.objects:
        resource = loaded.resource
        assert KINDS[resource.kind].model_validate(resource.model_dump(mode="json", by_alias=True))


@FUZZ
@given(st.text(max_size=400))
def test_any_text(text: str) -> None:
    check(load_text(text, "fuzz.yaml"))


@FUZZ
@given(documents, st.sampled_from(sorted(KINDS)))
def test_any_document_of_any_kind(doc, kind: str) -> None:
    if isinstance(doc, dict):
        doc = {"apiVersion": "corral.dev/v1alpha1", "kind": kind, **doc}
    import io

    out = io.StringIO()
    YAML(typ="safe", pure=True).dump(doc, out)
    check(load_text(out.getvalue(), "fuzz.yaml"))


@FUZZ
@given(
    st.sampled_from(EXAMPLES),
    st.integers(min_value=0, max_value=10_000),
    st.sampled_from(
        ["", "\n", ":", "- ", "{", "]", "&a", "*a", "!!python/object:os.system", "\t", "'"]
    ),
)
def test_mutated_examples(path: Path, offset: int, insert: str) -> None:
    text = path.read_text()
    at = offset % (len(text) + 1)
    check(load_text(text[:at] + insert + text[at:], path.name))


def test_examples_load_clean() -> None:
    result = load_paths([EXAMPLES[0].parent], root=EXAMPLES[0].parent)
    assert not result.errors
    assert result.objects
