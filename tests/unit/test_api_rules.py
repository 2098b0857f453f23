"""Pure rules of the API: selector text, the role table, scopes, merge patch, ownership."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from controller.api.bodies import merge_patch
from controller.api.errors import ApiError, field_path
from controller.api.objects import decide_owner
from controller.api.rbac import ROLE_VERBS, Identity, Role, Verb, restrict
from controller.api.selectors import SelectorError, parse_selector
from controller.store import StoredObject
from schemas import VirtualMachine
from schemas.meta import LabelSelector


@pytest.mark.parametrize(
    ("text", "matching", "not_matching"),
    [
        ("app=web", {"app": "web"}, {"app": "db"}),
        ("app==web", {"app": "web"}, {}),
        ("app!=web", {}, {"app": "web"}),
        ("app in (web, db)", {"app": "db"}, {"app": "cache"}),
        ("app notin (web)", {"app": "db"}, {"app": "web"}),
        ("gpu", {"gpu": ""}, {}),
        ("!gpu", {}, {"gpu": "yes"}),
        ("app=web,zone in (a,b),!legacy", {"app": "web", "zone": "b"}, {"app": "web", "zone": "c"}),
    ],
    ids=["eq", "eqeq", "neq", "in", "notin", "exists", "not-exists", "combined"],
)
def test_selector_text(text: str, matching: dict, not_matching: dict) -> None:
    selector = parse_selector(text)
    assert selector is not None
    assert selector.matches(matching)
    assert not selector.matches(not_matching)


@pytest.mark.parametrize("text", ["a in b", "!a=b", "=x", "a=b c", "a in (x", "Bad Key=1"])
def test_bad_selector_text(text: str) -> None:
    with pytest.raises(SelectorError):
        parse_selector(text)


def test_empty_selector_is_none() -> None:
    assert parse_selector("") is None
    assert parse_selector(None) is None


ROLE_TABLE = [
    (Role.VIEWER, {Verb.READ}),
    (Role.OPERATOR, {Verb.READ, Verb.WRITE, Verb.ACTION}),
    (Role.ADMIN, {Verb.READ, Verb.WRITE, Verb.ACTION, Verb.FORCE}),
]


@pytest.mark.parametrize(("role", "verbs"), ROLE_TABLE, ids=[r.value for r, _ in ROLE_TABLE])
def test_role_table(role: Role, verbs: set[Verb]) -> None:
    assert set(ROLE_VERBS[role]) == verbs
    for verb in Verb:
        assert Identity("x", role).may(verb) == (verb in verbs)


def test_scope_restricts_a_selector() -> None:
    scope = LabelSelector(match_labels={"team": "a"})
    combined = restrict(parse_selector("app=web"), scope)
    assert combined is not None
    assert combined.matches({"app": "web", "team": "a"})
    assert not combined.matches({"app": "web", "team": "b"})
    assert not combined.matches({"app": "db", "team": "a"})
    assert restrict(None, None) is None


@pytest.mark.parametrize(
    ("target", "patch", "expected"),
    [
        ({"a": 1}, {"a": 2}, {"a": 2}),
        ({"a": 1, "b": 2}, {"a": None}, {"b": 2}),
        ({"a": {"x": 1, "y": 2}}, {"a": {"y": None, "z": 3}}, {"a": {"x": 1, "z": 3}}),
        ({"a": [1, 2]}, {"a": [3]}, {"a": [3]}),
        ({"a": 1}, {"b": {"c": None}}, {"a": 1, "b": {}}),
        ({"a": "x"}, {"a": {"b": 1}}, {"a": {"b": 1}}),
    ],
    ids=["replace", "remove", "nested", "list-replaced", "null-in-new", "scalar-to-object"],
)
def test_merge_patch_rfc7386(target: dict, patch: dict, expected: dict) -> None:
    before = repr(target)
    assert merge_patch(target, patch) == expected
    assert repr(target) == before


def _stored(source: str, deleted: bool = False) -> StoredObject:
    obj = VirtualMachine.model_validate(
        {"kind": "VirtualMachine", "metadata": {"name": "v"}, "spec": {"cpus": 1, "memory": "1Gi"}}
    )
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return StoredObject(obj, source, None, 1, 1, None, now, now, now if deleted else None)


OWNERS = [
    # (current source, role, force, action, expected (source, take_over, taken_from) or code)
    (None, Role.OPERATOR, False, False, ("api:me", False, None)),
    ("api:alice", Role.OPERATOR, False, False, ("api:alice", False, None)),
    ("git:origin", Role.OPERATOR, False, False, 409),
    ("git:origin", Role.OPERATOR, True, False, 403),
    ("git:origin", Role.ADMIN, True, False, ("api:me", True, "git:origin")),
    ("kube:default", Role.OPERATOR, False, True, ("api:me", True, "kube:default")),
    ("deleted:git:origin", Role.OPERATOR, False, False, ("api:me", False, None)),
]


@pytest.mark.parametrize(
    ("current", "role", "force", "action", "expected"),
    OWNERS,
    ids=["new", "api-owned", "git-owned", "force-operator", "force-admin", "action", "tombstone"],
)
def test_decide_owner(current, role, force, action, expected) -> None:
    stored = None
    if current is not None:
        deleted = current.startswith("deleted:")
        stored = _stored(current.removeprefix("deleted:"), deleted)
    identity = Identity("me", role)
    if isinstance(expected, int):
        with pytest.raises(ApiError) as caught:
            decide_owner(stored, identity, force, action)
        assert caught.value.code == expected
    else:
        owner = decide_owner(stored, identity, force, action)
        assert (owner.source, owner.take_over, owner.taken_from) == expected


def test_field_paths() -> None:
    assert field_path(("spec", "disks", 1, "size")) == "spec.disks[1].size"
    assert field_path(()) == "(body)"
