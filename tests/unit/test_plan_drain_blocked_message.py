"""A blocked drain says once that nothing is stopped (seen on the lab: the host's message
repeated its VM's ending)."""

from __future__ import annotations

from fleet_sim import desired_of
from plan_fixtures import POLICY, converged, host, network, pool, vm

from controller.plan import plan


def test_drain_of_the_only_host_says_nothing_is_stopped_once() -> None:
    objects = [host("host-a"), network(), pool(), *vm("web-1", ha={"enabled": True})]
    sim = converged(objects, "host-a")
    after = [
        host("host-a", maintenance=True),
        network(),
        pool(),
        *vm("web-1", ha={"enabled": True}),
    ]
    p = plan(desired_of(*after), sim.observed(), POLICY)
    message = p.verdicts[("Host", "host-a")].message
    assert message.startswith("Host host-a is in maintenance but web-1 cannot leave: ")
    assert message.endswith("; nothing is stopped for it")
    assert message.count("nothing is stopped") == 1
