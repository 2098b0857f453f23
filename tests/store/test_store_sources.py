"""Configured sources: settings, attempted and applied revisions, status."""

from __future__ import annotations

import pytest
from store_objects import vm

from controller.store import InvalidInput, NotFound, Store

STALLED = {
    "conditions": [
        {
            "type": "Stalled",
            "status": "True",
            "reason": "ManifestInvalid",
            "message": "fleet/web.yaml:14:7: spec.disks[1].size: expected a quantity",
        }
    ]
}


def test_a_source_is_created_and_reconfigured(store: Store) -> None:
    created = store.put_source("origin", "git", {"url": "/srv/fleet.git", "branch": "main"})
    assert (created.key, created.settings["branch"], created.last_applied_revision) == (
        "git:origin",
        "main",
        None,
    )
    store.apply_snapshot("git:origin", "c1", [vm("web-1")])
    changed = store.put_source(
        "origin", "git", {"url": "/srv/fleet.git", "branch": "prod", "prune": True}
    )
    assert (changed.settings["prune"], changed.last_applied_revision) == (True, "c1")
    assert [s.name for s in store.list_sources()] == ["origin"]


def test_a_bad_commit_is_attempted_but_not_applied(store: Store) -> None:
    store.put_source("origin", "git", {"url": "/srv/fleet.git"})
    store.apply_snapshot("git:origin", "c1", [vm("web-1")])
    assert store.record_source_attempt("origin", "c2", STALLED) is True
    assert store.record_source_attempt("origin", "c2", STALLED) is False
    source = store.get_source("origin")
    assert (source.last_applied_revision, source.last_attempted_revision) == ("c1", "c2")
    assert source.status == STALLED


@pytest.mark.parametrize(
    ("name", "type_", "field"),
    [
        pytest.param("Origin", "git", "name", id="name-not-dns-label"),
        pytest.param("origin", "svn", "type", id="unknown-type"),
    ],
)
def test_malformed_sources_are_refused(store: Store, name: str, type_: str, field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        store.put_source(name, type_, {})
    assert info.value.field == field


def test_deleting_a_source_keeps_its_objects(store: Store) -> None:
    store.put_source("local", "dir", {"path": "/srv/manifests"})
    store.apply_snapshot("dir:local", "d1", [vm("web-1")])
    store.delete_source("local")
    with pytest.raises(NotFound):
        store.get_source("local")
    assert store.get("VirtualMachine", "web-1").source == "dir:local"
