"""How long each simulated agent call takes: measured libvirt/QEMU figures, with jitter."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field, replace

from agentapi import Verb


@dataclass(frozen=True)
class Latency:
    """Seconds per agent verb; `jitter` is the +/- fraction each call varies by.

    Defaults follow /work/shared/LAB.md and the agent benchmarks: `virsh start` of a
    small guest returns in about 0.5 s, a define or a thin clone takes tens of
    milliseconds, a live migration of a small guest 2-3 s. `scale` multiplies all.
    """

    read_s: float = 0.004
    define_s: float = 0.03
    start_s: float = 0.5
    stop_s: float = 0.3
    destroy_s: float = 0.05
    undefine_s: float = 0.02
    network_s: float = 0.05
    network_start_s: float = 0.2
    pool_s: float = 0.1
    volume_s: float = 0.05
    lease_s: float = 0.002
    migration_s: float = 2.5
    jitter: float = 0.2
    scale: float = 1.0
    seed: int = 7
    _rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._rng.seed(self.seed)

    def scaled(self, scale: float) -> Latency:
        """Return the same profile with every latency multiplied by `scale` (0: instant)."""
        return replace(self, scale=scale, _rng=random.Random(), _lock=threading.Lock())

    def of(self, verb: str) -> float:
        """Return seconds for one call of `verb` (an attribute name without `_s`)."""
        base = getattr(self, f"{verb}_s") * self.scale
        if base <= 0:
            return 0.0
        with self._lock:
            factor = 1.0 + self._rng.uniform(-self.jitter, self.jitter)
        return base * factor


VERB_LATENCY: dict[str, str] = {
    "ensure_domain_defined": "define",
    "ensure_running": "start",
    "ensure_stopped": "stop",
    "ensure_destroyed": "destroy",
    "ensure_undefined": "undefine",
    "ensure_snapshot_deleted": "undefine",
    "ensure_network_defined": "network",
    "ensure_network_active": "network_start",
    "ensure_network_inactive": "network",
    "ensure_network_undefined": "network",
    "ensure_pool": "pool",
    "ensure_pool_undefined": "pool",
    "ensure_volume": "volume",
    "ensure_volume_deleted": "volume",
    "upload_volume": "volume",
    "get_lease": "lease",
}
"""The latency of each verb whose cost is not the default: a read for GETs and
websockets, a define for the other mutating verbs."""


def latency_of(verb: Verb) -> str:
    """Return the name of the `Latency` field (without `_s`) a call of `verb` takes."""
    return VERB_LATENCY.get(verb.name, "read" if verb.method in ("GET", "WS") else "define")


INSTANT = Latency(scale=0.0)
"""No latency at all: for functional tests of the simulated fleet."""
