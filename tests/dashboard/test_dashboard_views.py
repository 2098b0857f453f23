"""Pure view shaping: plan actions per object and plans grouped by source revision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from controller.dashboard.views import actions_on, revisions
from controller.store.records import ActionOutcome, PlanRecord

T0 = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)


def plan(id_: int, revision: str, actions: list[dict], outcomes: list) -> PlanRecord:
    return PlanRecord(
        id=id_,
        created_at=T0 + timedelta(minutes=id_),
        finished_at=None,
        source="git:fleet",
        revision=revision,
        actions=actions,
        outcomes=outcomes,
        summary=f"{len(actions)} actions",
    )


MIGRATE = {
    "type": "MigrateVM",
    "target": "VirtualMachine/web",
    "host": "h1",
    "diff": [{"op": "replace"}],
}
START = {"type": "StartVM", "target": "VirtualMachine/db", "host": "h2"}
PLANS = [
    plan(3, "bbb", [MIGRATE], [ActionOutcome(False, "refused", T0)]),
    plan(2, "aaa", [START], [None]),
    plan(1, "aaa", [START], [ActionOutcome(True, None, T0)]),
]


def test_actions_on_a_vm_and_on_a_host() -> None:
    assert [(a["plan"], a["ok"]) for a in actions_on(PLANS, "VirtualMachine/db")] == [
        (2, None),
        (1, True),
    ]
    (on_h1,) = actions_on(PLANS, "Host/h1")
    assert (on_h1["type"], on_h1["target"], on_h1["error"], on_h1["diff"]) == (
        "MigrateVM",
        "VirtualMachine/web",
        "refused",
        [{"op": "replace"}],
    )


def test_revisions_group_plans_with_their_outcome() -> None:
    rows = revisions(PLANS, {"aaa": ("Ann <ann@example.org>", "Start db")})
    assert [(r.revision, r.plans, r.actions, r.outcome, r.author) for r in rows] == [
        ("bbb", 1, 1, "Failed", None),
        ("aaa", 2, 2, "Pending", "Ann <ann@example.org>"),
    ]
    assert (rows[1].first, rows[1].last) == (T0 + timedelta(minutes=1), T0 + timedelta(minutes=2))


def test_commit_author_and_subject_come_from_a_local_git_source(tmp_path) -> None:
    import git

    from controller.dashboard.gitinfo import commits_of
    from controller.store.records import SourceRecord

    repo = git.Repo.init(tmp_path / "fleet")
    (tmp_path / "fleet" / "vm.yaml").write_text("kind: VirtualMachine\n")
    repo.index.add(["vm.yaml"])
    actor = git.Actor("Ann", "ann@example.org")
    sha = repo.index.commit("Add web\n\nbody", author=actor, committer=actor).hexsha
    source = SourceRecord("fleet", "git", {"url": str(tmp_path / "fleet")}, sha, sha, None, T0)
    remote = SourceRecord("far", "git", {"url": "https://example.org/x.git"}, None, None, None, T0)
    assert commits_of([remote, source], [sha, "0" * 40, "-"]) == {
        sha: ("Ann <ann@example.org>", "Add web")
    }
