"""A simulated fleet for scale benchmarks and fault injection: in-memory hosts behind the
agent's HTTP contract, reached through `AgentPool(transport_for=fleet.transport_for)`.

Not a stand-in in functional tests of the agent: tests/agent runs the real one. Here the
point is the controller's cost and behaviour at 1,000 hosts, where each host's own work
is simulated as latency rather than spent as this machine's CPU.
"""

from controller.sim.fleet import FaultLog, LinkFaults, SimFleet
from controller.sim.host import SharedStorage, SimFailure, SimHost
from controller.sim.latency import INSTANT, Latency
from controller.sim.transport import SimTransport
from controller.sim.workload import write_fleet

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
