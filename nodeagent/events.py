"""The agent's event stream: a numbered ring buffer fed by libvirt lifecycle callbacks.

Sequence numbers start at the agent's start time in milliseconds and grow by one,
so a client's `since` from an earlier agent process is older than anything in the
buffer and gets a `resync` (re-read the full state) instead of silently missing events.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import libvirt

from agentapi import AgentEvent
from nodeagent.vocab import NETWORK_EVENTS, POOL_EVENTS, domain_event_name


class EventHub:
    """A thread-safe ring buffer of AgentEvents with asyncio subscribers."""

    def __init__(
        self,
        capacity: int = 1000,
        *,
        first_seq: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._events: deque[AgentEvent] = deque(maxlen=capacity)
        self._last_seq = (first_seq if first_seq is not None else int(clock() * 1000)) - 1
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    @property
    def last_seq(self) -> int:
        """Return the sequence number of the newest event (first_seq - 1 when empty)."""
        return self._last_seq

    def publish(
        self,
        kind: str,
        obj: str,
        name: str,
        event: str,
        detail: str = "",
        data: dict[str, Any] | None = None,
    ) -> AgentEvent:
        """Append an event with the next sequence number and wake every subscriber."""
        with self._lock:
            self._last_seq += 1
            item = AgentEvent(
                seq=self._last_seq,
                at=self._clock(),
                kind=kind,
                object=obj,  # type: ignore[arg-type]
                name=name,
                event=event,
                detail=detail,
                data=data or {},
            )
            self._events.append(item)
            waiters = list(self._waiters)
        for loop, flag in waiters:
            try:
                loop.call_soon_threadsafe(flag.set)
            except RuntimeError:
                self._waiters.discard((loop, flag))
        return item

    def since(self, seq: int) -> tuple[bool, list[AgentEvent]]:
        """Return (complete, events after `seq`).

        `complete` is False when the buffer cannot prove it holds every event after
        `seq` (older than the buffer, or from another agent process): resync then.
        """
        with self._lock:
            if seq > self._last_seq:
                return False, []
            oldest = self._events[0].seq if self._events else self._last_seq + 1
            if seq < oldest - 1:
                return False, []
            return True, [e for e in self._events if e.seq > seq]

    async def wait(self, after_seq: int, timeout_s: float) -> None:
        """Return when an event newer than `after_seq` exists, or after `timeout_s`."""
        if self._last_seq > after_seq:
            return
        flag = asyncio.Event()
        key = (asyncio.get_running_loop(), flag)
        with self._lock:
            self._waiters.add(key)
        try:
            if self._last_seq > after_seq:
                return
            try:
                await asyncio.wait_for(flag.wait(), timeout_s)
            except TimeoutError:
                return
        finally:
            with self._lock:
                self._waiters.discard(key)


def register_libvirt_events(conn: libvirt.virConnect, hub: EventHub) -> None:
    """Subscribe `hub` to domain, network and storage pool lifecycle events of `conn`."""

    def on_domain(_conn: Any, dom: libvirt.virDomain, event: int, detail: int, _op: Any) -> None:
        word, detail_word = domain_event_name(event, detail)
        hub.publish("lifecycle", "domain", dom.name(), word, detail_word)

    def on_network(_conn: Any, net: libvirt.virNetwork, event: int, _detail: int, _o: Any) -> None:
        hub.publish("lifecycle", "network", net.name(), NETWORK_EVENTS.get(event, str(event)))

    def on_pool(_conn: Any, pool: libvirt.virStoragePool, event: int, _d: int, _o: Any) -> None:
        hub.publish("lifecycle", "pool", pool.name(), POOL_EVENTS.get(event, str(event)))

    conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, on_domain, None)
    conn.networkEventRegisterAny(None, libvirt.VIR_NETWORK_EVENT_ID_LIFECYCLE, on_network, None)
    conn.storagePoolEventRegisterAny(
        None, libvirt.VIR_STORAGE_POOL_EVENT_ID_LIFECYCLE, on_pool, None
    )
