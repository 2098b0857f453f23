"""Domain verbs over the real agent app and client, on libvirt's test driver."""

from __future__ import annotations

from urllib.parse import quote

import libvirt
import pytest
from agentkit import make_spec, revise

from agentapi import VERBS, NicSpec, diff_domain_specs
from controller.agents import (
    AgentConflict,
    AgentLibvirtError,
    AgentNotFound,
    InvalidSpec,
)
from controller.agentverbs import call


def test_define_creates_then_repeats_unchanged(client, spec):
    first = client.ensure_domain_defined(spec)
    second = client.ensure_domain_defined(spec)

    assert (first.changed, first.created) == (True, True)
    assert (second.changed, second.created) == (False, False)
    observed = client.get_domain("web-1")
    assert observed.spec == spec
    assert (observed.state, observed.persistent, observed.live) == ("shutoff", True, None)
    assert observed.metadata == spec.labels


def test_define_update_changes_persistent_definition(client, spec):
    client.ensure_domain_defined(spec)
    bigger = revise(spec, **{"memory_mib": 128, "description": "web tier"})

    result = client.ensure_domain_defined(bigger)

    assert (result.changed, result.created, result.restart_required) == (True, False, [])
    assert client.get_domain("web-1").spec == bigger


def test_running_domain_gets_memory_vcpus_and_metadata_live(client, spec):
    client.ensure_domain_defined(spec)
    client.ensure_running("web-1")
    changed = revise(
        spec,
        **{
            "memory_mib": 200,
            "vcpus": 2,
            "labels": {**spec.labels, "corral.dev/generation": "2"},
            "ha_priority": 90,
            "description": "now with more memory",
        },
    )

    result = client.ensure_domain_defined(changed)

    assert sorted(result.applied_live) == sorted(
        ["memory_mib", "vcpus", "labels", "ha_priority", "description"]
    )
    assert result.restart_required == []
    observed = client.get_domain("web-1")
    assert observed.spec == changed
    assert diff_domain_specs(changed, observed.live) == []
    assert client.ensure_domain_defined(changed).changed is False


def test_running_domain_reports_fields_that_need_a_restart(client, spec):
    client.ensure_domain_defined(spec)
    client.ensure_running("web-1")
    changed = revise(
        spec, **{"memory_mib": 512, "max_memory_mib": 512, "cmdline": "console=ttyS0 quiet"}
    )

    result = client.ensure_domain_defined(changed)

    assert result.changed is True
    assert sorted(result.restart_required) == ["cmdline", "max_memory_mib", "memory_mib"]
    observed = client.get_domain("web-1")
    assert observed.spec == changed
    assert sorted(diff_domain_specs(changed, observed.live)) == [
        "cmdline",
        "max_memory_mib",
        "memory_mib",
    ]


def test_drift_made_behind_the_agent_is_observed(agent, client, spec):
    client.ensure_domain_defined(spec)
    conn = agent.ctx.connection.get()
    conn.lookupByName("web-1").setMemoryFlags(150 * 1024, libvirt.VIR_DOMAIN_AFFECT_CONFIG)

    observed = client.get_domain("web-1").spec

    assert diff_domain_specs(spec, observed) == ["memory_mib"]
    assert observed.memory_mib == 150
    assert client.ensure_domain_defined(spec).changed is True
    assert client.get_domain("web-1").spec == spec


def test_running_stopped_destroyed_are_idempotent(client, spec):
    client.ensure_domain_defined(spec)

    started = [client.ensure_running("web-1") for _ in range(2)]
    stopped = [client.ensure_stopped("web-1", timeout_s=5) for _ in range(2)]
    client.ensure_running("web-1")
    destroyed = [client.ensure_destroyed("web-1") for _ in range(2)]

    assert [r.changed for r in started] == [True, False]
    assert [r.changed for r in stopped] == [True, False]
    assert stopped[0].message == "shut down"
    assert [r.changed for r in destroyed] == [True, False]
    state = client.get_domain("web-1")
    assert (state.state, state.reason) == ("shutoff", "destroyed")


def test_ensure_running_resumes_a_paused_domain(agent, client, spec):
    client.ensure_domain_defined(spec)
    client.ensure_running("web-1")
    agent.ctx.connection.get().lookupByName("web-1").suspend()

    result = client.ensure_running("web-1")

    assert (result.changed, result.message) == (True, "resumed")
    assert client.get_domain("web-1").state == "running"


def test_undefine_refuses_running_domain_unless_forced(client, spec):
    client.ensure_domain_defined(spec)
    client.ensure_running("web-1")

    with pytest.raises(AgentConflict, match="running"):
        client.ensure_undefined("web-1")
    assert client.get_domain("web-1").state == "running"

    assert client.ensure_undefined("web-1", force=True).changed is True
    assert client.ensure_undefined("web-1").changed is False
    with pytest.raises(AgentNotFound):
        client.get_domain("web-1")


def test_undefine_removes_snapshot_metadata(client, spec):
    client.ensure_domain_defined(spec)
    client.ensure_snapshot("web-1", "before")

    assert client.ensure_undefined("web-1").changed is True
    assert client.get_state().domains == []


@pytest.mark.parametrize(
    "verb",
    [
        lambda c: c.get_domain("ghost"),
        lambda c: c.ensure_running("ghost"),
        lambda c: c.ensure_stopped("ghost", 1),
        lambda c: c.ensure_destroyed("ghost"),
        lambda c: c.list_snapshots("ghost"),
        lambda c: c.ensure_snapshot("ghost", "s"),
    ],
    ids=["get", "running", "stopped", "destroyed", "snapshots", "snapshot"],
)
def test_verb_on_missing_domain_is_not_found(client, verb):
    with pytest.raises(AgentNotFound) as caught:
        verb(client)
    assert caught.value.error.type == "not_found"
    assert "ghost" in str(caught.value)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"vcpus": 0}, "vcpus"),
        ({"memory_mib": "lots"}, "memory_mib"),
        ({"uuid": "not-a-uuid"}, "uuid"),
        ({"disks": [{"target": "vda"}]}, "disks.0"),
        ({"disks": [{"target": "floppy", "path": "/x"}]}, "disks.0.target"),
        ({"nics": [{"network": "a", "bridge": "b"}]}, "nics.0"),
        ({"kernel": "relative/vmlinuz"}, "kernel"),
        ({"surprise": 1}, "surprise"),
    ],
    ids=["vcpus", "memory", "uuid", "disk-source", "disk-target", "nic", "kernel", "extra"],
)
def test_invalid_spec_names_the_field(client, spec, body, field):
    raw = {**spec.model_dump(), **body}
    response = client._http.put("domains/web-1", json=raw)

    assert response.status_code == 422
    error = response.json()
    assert (error["type"], error["field"]) == ("invalid_spec", field)


def test_path_and_spec_name_must_agree(client, spec):
    response = client._http.put("domains/other", json=spec.model_dump(mode="json"))
    assert response.status_code == 422
    assert response.json()["field"] == "name"


def test_invalid_spec_raised_as_typed_client_error(client, spec):
    with pytest.raises(InvalidSpec) as caught:
        client.perform(call(VERBS.ensure_domain_defined, revise(spec, name="x"), name="web-1"))
    assert caught.value.field == "name"


def test_libvirt_rejection_passes_code_and_keeps_old_definition(client, spec):
    client.ensure_domain_defined(spec)
    multicast = revise(
        spec, **{"memory_mib": 128, "nics": [NicSpec(network="default", mac="53:54:00:00:00:01")]}
    )

    with pytest.raises(AgentLibvirtError) as caught:
        client.ensure_domain_defined(multicast)

    assert caught.value.libvirt_code == libvirt.VIR_ERR_XML_ERROR
    assert "multicast" in str(caught.value)
    assert client.get_domain("web-1").spec == spec


def test_other_uuid_is_a_conflict_and_changes_nothing(client, spec):
    client.ensure_domain_defined(spec)
    impostor = make_spec(n=7, memory_mib=200)

    with pytest.raises(AgentConflict, match="uuid"):
        client.ensure_domain_defined(impostor)
    assert client.get_domain("web-1").spec == spec


def test_crash_between_define_and_start(make_agent, client_for):
    # test:///default keeps its state while any connection to it is open, like a
    # real libvirtd outliving a crashed agent process.
    keeper = libvirt.open("test:///default")
    try:
        spec = make_spec("crash-test", n=3, nics=[], disks=[])
        first = make_agent("test:///default")
        client_for(first).ensure_domain_defined(spec)
        first.lease.stop()  # the first agent dies here, before starting the domain

        second = make_agent("test:///default")
        client = client_for(second)
        assert client.ensure_domain_defined(spec).changed is False
        assert client.ensure_running("crash-test").changed is True
        assert client.get_domain("crash-test").state == "running"
        client.ensure_undefined("crash-test", force=True)
    finally:
        keeper.close()


def test_full_state_lists_domains_networks_pools(client, spec):
    client.ensure_domain_defined(spec)
    client.ensure_running("web-1")

    state = client.get_state()

    assert [d.name for d in state.domains] == ["web-1"]
    assert state.domains[0].live is not None
    assert [n.name for n in state.networks] == ["default"]
    assert [p.name for p in state.pools] == ["images"]
    assert (state.cpus, state.memory_mib) == (4, 16384)
    assert state.libvirt_version.count(".") == 2


def test_stats_report_each_domain(client, spec):
    client.ensure_domain_defined(spec)
    client.ensure_running("web-1")

    stats = client.get_stats()

    assert [(d.name, d.state) for d in stats.domains] == [("web-1", "running")]
    assert stats.domains[0].cpu_time_ns is not None
    assert stats.domains[0].balloon_current_kib == 96 * 1024
    assert stats.cpus == 4


@pytest.mark.parametrize(
    ("snap", "body", "field"),
    [
        ("\x11r04", {}, "snap"),  # a control character would reach libvirt's XML
        ("-leading-dash", {}, "snap"),
        ("ok", {"description": "line\x0bfeed"}, "description"),
    ],
    ids=["control-char-name", "bad-first-char", "control-char-description"],
)
def test_snapshot_names_and_descriptions_are_checked_before_libvirt(
    client, spec, snap, body, field
):
    client.ensure_domain_defined(spec)
    response = client._http.put(f"domains/web-1/snapshots/{quote(snap, safe='')}", json=body)

    assert response.status_code == 422, response.text
    error = response.json()
    assert error["type"] == "invalid_spec" and field in (error["field"] or "")
    assert client.list_snapshots("web-1") == []
