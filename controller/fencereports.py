"""Turns the agents' self-fences into events, once each.

An agent that killed its HA VMs (nodeagent.lease) lists each kill in its state
(`lease.fenced`, unix times). When the controller reads such a host, every kill newer
than the last one reported becomes a Warning event `SelfFenced` on the VirtualMachine and
on the Host. What was reported lives in the store itself: the newest SelfFenced event of
each host, read once per host after a controller start, so a restart reports nothing twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from agentapi import FenceRecord
from controller.plan.model import Observed
from controller.store import Store

SELF_FENCED = "SelfFenced"
"""Event reason: a host's agent killed an HA VM itself, its etcd lease lapsed."""


def fence_events(
    host: str, records: Sequence[FenceRecord], reported_until: float
) -> tuple[list[tuple[str, str, str, str, str]], float]:
    """Return the events of the kills newer than `reported_until` (unix seconds), and the
    newest kill time reported after them."""
    events = []
    newest = reported_until
    for record in sorted(records, key=lambda r: r.at):
        if record.at <= reported_until:
            continue
        when = datetime.fromtimestamp(record.at, UTC).strftime("%Y-%m-%d %H:%M:%S")
        outcome = "killed" if record.ok else "could not kill"
        message = (
            f"Host {host}'s agent {outcome} VirtualMachine {record.vm} at {when} UTC: no "
            f"keepalive of its etcd lease was acknowledged in time ({record.message})"
        )
        events.append(("VirtualMachine", record.vm, "Warning", SELF_FENCED, message))
        events.append(("Host", host, "Warning", SELF_FENCED, message))
        newest = max(newest, record.at)
    return events, newest


class FenceReporter:
    """Reports each host's new self-fences as events; owns the per-host watermark."""

    def __init__(self, store: Store, identity: str) -> None:
        self.store = store
        self.identity = identity
        self._reported: dict[str, float] = {}

    def _watermark(self, host: str) -> float:
        if host not in self._reported:
            seen = [
                e.last_seen.timestamp()
                for e in self.store.list_events(kind="Host", name=host, type_="Warning")
                if e.reason == SELF_FENCED
            ]
            self._reported[host] = max(seen, default=0.0)
        return self._reported[host]

    def report(self, observed: Observed, hosts: Iterable[str]) -> int:
        """Record the events of new self-fences on `hosts`; return how many kills."""
        items: list[tuple[str, str, str, str, str]] = []
        for host in hosts:
            obs = observed.hosts.get(host)
            if obs is None or obs.state is None or not obs.state.lease.fenced:
                continue
            events, newest = fence_events(host, obs.state.lease.fenced, self._watermark(host))
            items.extend(events)
            self._reported[host] = newest
        if items:
            self.store.record_events(items, identity=self.identity)
        return len(items) // 2
