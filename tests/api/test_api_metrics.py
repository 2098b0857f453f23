"""/metrics: reconcile passes through the loop's on_pass hook; fleet gauges read from the store."""

from __future__ import annotations

from apikit import Tokens, bearer, host, host_state, vm
from prometheus_client.parser import text_string_to_metric_families

from controller.agentpool import AgentPool
from controller.api.metrics import ControllerMetrics, FleetCollector
from controller.loop import Controller
from controller.store import Store


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Return every sample of an exposition text keyed by (name, sorted labels)."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_fleet_gauges_come_from_the_store(client, issued: Tokens, store: Store) -> None:
    store.put(vm("web-1"), "api:x")
    store.put(vm("web-2"), "api:x")
    store.put(host("h1"), "git:origin")
    store.put_status(
        "VirtualMachine",
        "web-1",
        {
            "phase": "Running",
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Running",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                }
            ],
        },
    )
    store.put_observed("h1", True, host_state("h1"))
    store.put_observed("h2", False, None, "connection refused")
    text = client.get("/metrics", headers=bearer(issued.viewer)).text
    got = samples(text)
    assert got[("corral_objects", (("kind", "VirtualMachine"), ("ready", "True")))] == 1
    assert got[("corral_objects", (("kind", "VirtualMachine"), ("ready", "Unknown")))] == 1
    assert got[("corral_objects", (("kind", "Host"), ("ready", "Unknown")))] == 1
    assert got[("corral_vms", (("phase", "Running"),))] == 1
    assert got[("corral_vms", (("phase", "Pending"),))] == 1
    assert got[("corral_hosts", (("state", "up"),))] == 1
    assert got[("corral_hosts", (("state", "down"),))] == 1


def test_reconcile_passes_feed_the_pass_hook(store: Store) -> None:
    """A real pass of the loop (no hosts: the VM stalls, nothing to run) is recorded."""
    store.put(vm("web-1"), "api:x")
    controller = Controller(store, [], AgentPool(), identity="test-controller")
    metrics = ControllerMetrics(store)
    try:
        for _ in range(2):
            metrics.observe_pass(controller.reconcile())
    finally:
        controller.pool.close()
    got = samples(metrics.render().decode())
    assert got[("corral_reconcile_pass_seconds_count", ())] == 2
    assert got[("corral_reconcile_passes_total", (("outcome", "progressing"),))] == 2
    assert got[("corral_plan_actions_count", ())] == 2
    assert got[("corral_plan_actions_sum", ())] == 0


def test_api_requests_are_counted_by_route_template(client, issued: Tokens, store: Store) -> None:
    store.put(vm("web-1"), "api:x")
    for _ in range(3):
        client.get("/api/v1/virtualmachines/web-1", headers=bearer(issued.viewer))
    client.get("/api/v1/virtualmachines/nope", headers=bearer(issued.viewer))
    got = samples(client.get("/metrics", headers=bearer(issued.viewer)).text)
    route = "/api/v1/virtualmachines/{name}"
    assert (
        got[("corral_api_requests_total", (("code", "200"), ("method", "GET"), ("route", route)))]
        == 3
    )
    assert (
        got[("corral_api_requests_total", (("code", "404"), ("method", "GET"), ("route", route)))]
        == 1
    )


def test_fleet_reading_is_reused_within_its_interval(store: Store) -> None:
    now = [100.0]
    collector = FleetCollector(store, min_interval_s=5.0, clock=lambda: now[0])

    def vm_count() -> float:
        family = next(m for m in collector.collect() if m.name == "corral_vms")
        return sum(s.value for s in family.samples)

    store.put(vm("a"), "api:x")
    assert vm_count() == 1
    store.put(vm("b"), "api:x")
    now[0] += 4.9
    assert vm_count() == 1
    now[0] += 0.1
    assert vm_count() == 2
