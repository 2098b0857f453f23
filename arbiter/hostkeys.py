"""The key layout of host fencing leases in etcd.

Each agent holds `<prefix>hosts/<host>` bound to a lease of the host's TTL and keeps the
lease alive itself. The key exists exactly while etcd holds the lease: its deletion
(the lease expired in etcd) is the controller's proof that the agent has fenced.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

HOSTS_DIR = "hosts/"


def hosts_prefix(prefix: str) -> str:
    """Return the prefix under which every host's lease key lives."""
    return f"{prefix}{HOSTS_DIR}"


def host_key(prefix: str, host: str) -> str:
    """Return the lease key of `host`."""
    return f"{hosts_prefix(prefix)}{host}"


def host_of_key(prefix: str, key: str) -> str | None:
    """Return the host a lease key belongs to, or None for a key of another kind."""
    head = hosts_prefix(prefix)
    if not key.startswith(head) or len(key) == len(head):
        return None
    return key[len(head) :]


@dataclass(frozen=True)
class HostLeaseRecord:
    """The value of a host's lease key: who holds it and by which rules it fences."""

    host: str
    ttl_s: int
    margin_s: float
    agent: str
    """The agent process that holds the lease (boot id and pid), to tell restarts apart."""

    def encode(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def decode(cls, raw: bytes) -> HostLeaseRecord | None:
        """Return the record, or None when the value is not one (left by something else)."""
        try:
            doc = json.loads(raw)
            return cls(
                host=str(doc["host"]),
                ttl_s=int(doc["ttl_s"]),
                margin_s=float(doc["margin_s"]),
                agent=str(doc["agent"]),
            )
        except (ValueError, KeyError, TypeError):
            return None
