"""A simulated fleet for scale benchmarks and fault injection: in-memory hosts behind the
agent's HTTP contract, reached through `AgentPool(transport_for=fleet.transport_for)`.

Not a stand-in in functional tests of the agent: tests/agent runs the real one. Here the
point is the controller's cost and behaviour at 1,000 hosts, where each host's own work
is simulated as latency rather than spent as this machine's CPU.
"""

import importlib
from typing import Any

_HOMES = {
    "FaultLog": "fleet",
    "LinkFaults": "fleet",
    "SimFleet": "fleet",
    "SharedStorage": "host",
    "SimFailure": "host",
    "SimHost": "host",
    "INSTANT": "latency",
    "Latency": "latency",
    "SimTransport": "transport",
    "write_fleet": "workload",
}


def __getattr__(name: str) -> Any:
    """Import each name from its module on first use: a process that only writes a fleet
    or talks to a served one (bench/bench_fleet.py) never loads the simulated hosts, nor
    the libvirt bindings their agent errors come from, so its memory is the controller's."""
    if name not in _HOMES:
        raise AttributeError(f"module 'controller.sim' has no attribute {name!r}")
    return getattr(importlib.import_module(f"controller.sim.{_HOMES[name]}"), name)


__all__ = [
    "INSTANT",
    "FaultLog",
    "Latency",
    "LinkFaults",
    "SharedStorage",
    "SimFailure",
    "SimFleet",
    "SimHost",
    "SimTransport",
    "write_fleet",
]
