"""Properties of schedule_many over random fleets: capacity and hard rules always hold."""

from __future__ import annotations

from collections import Counter, defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st
from test_scheduler_fixtures import group, host, policy, vm

from controller.scheduler import schedule_many

ZONES = ("a", "b")


@st.composite
def fleets(draw):
    n_hosts = draw(st.integers(1, 6))
    hosts = [
        host(
            f"h{i}",
            cpus=draw(st.sampled_from([1, 2, 4])),
            mem_gi=draw(st.sampled_from([2, 4, 8])),
            labels={"zone": draw(st.sampled_from(ZONES))},
            maintenance=draw(st.booleans()) and draw(st.booleans()),
            healthy=draw(st.integers(0, 5)) > 0,
            reserved_memory=draw(st.sampled_from([0, 2**30])),
        )
        for i in range(n_hosts)
    ]
    n_vms = draw(st.integers(1, 14))
    vms = [
        vm(
            f"v{i:02d}",
            cpus=draw(st.sampled_from([0.5, 1, 2])),
            mem_gi=draw(st.sampled_from([0.5, 1, 2])),
            labels={"app": draw(st.sampled_from(["x", "y", "z"]))},
            selector=draw(st.sampled_from([None, {"matchLabels": {"zone": "a"}}])),
            pinned_host=draw(st.sampled_from([None, None, None, "h0"])),
            ha_priority=draw(st.integers(0, 3)),
        )
        for i in range(n_vms)
    ]
    groups = []
    for app, polarity in (("x", "negative"), ("y", "positive")):
        if draw(st.booleans()):
            groups.append(
                group(
                    f"g-{app}",
                    vmSelector={"matchLabels": {"app": app}},
                    vmRule={"polarity": polarity},
                )
            )
    if draw(st.booleans()):
        groups.append(
            group(
                "g-host",
                vmSelector={"matchLabels": {"app": "z"}},
                hosts=[hosts[-1].name],
                hostRule={"polarity": "negative"},
            )
        )
    ratio = draw(st.sampled_from([1.0, 2.0]))
    weights = draw(st.sampled_from([[{"name": "Spread"}], [{"name": "Pack"}]]))
    return hosts, vms, groups, policy(overcommit={"cpuRatio": ratio}, weights=weights), ratio


@settings(max_examples=80, deadline=None)
@given(fleets())
def test_schedule_many_keeps_capacity_and_hard_rules(fleet):
    hosts, vms, groups, pol, ratio = fleet
    labels = {v.name: v.labels for v in vms}
    placed = {p.vm: p.host for p in schedule_many(vms, hosts, pol, groups, {}, labels)}
    by_name = {h.name: h for h in hosts}
    spec = {v.name: v for v in vms}
    cpu, mem = Counter(), Counter()
    for name, where in placed.items():
        if where is None:
            continue
        h, v = by_name[where], spec[name]
        cpu[where] += v.cpu_milli
        mem[where] += v.memory
        assert not h.maintenance and h.healthy
        assert v.pinned_host in (None, where)
        if v.host_selector is not None:
            assert h.labels["zone"] == "a"
    for name, h in by_name.items():
        assert cpu[name] <= (h.cpu_capacity_milli - h.reserved_cpu_milli) * ratio
        assert mem[name] <= h.memory_capacity - h.reserved_memory
    members = defaultdict(list)
    for name, v in spec.items():
        if placed[name] is not None:
            members[v.labels["app"]].append(placed[name])
    names = {g.name for g in groups}
    if "g-x" in names:
        assert len(members["x"]) == len(set(members["x"]))
    if "g-y" in names:
        assert len(set(members["y"])) <= 1
    if "g-host" in names:
        assert hosts[-1].name not in members["z"]
