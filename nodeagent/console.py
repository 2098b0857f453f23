"""Serial consoles: a domain's pty console (`virDomainOpenConsole`) as a byte stream.

A `ConsoleStream` opens a non-blocking libvirt stream on the domain's console and
hands what the guest prints to an asyncio queue from libvirt's event loop thread;
writes go the other way. `ConsoleSessions` keeps at most one session per domain
in this agent: a second one is refused (conflict) unless it asks to `force`, which
ends the first. Libvirt enforces the same rule against other clients (virsh console).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field

import libvirt

from nodeagent.domains import lookup_domain
from nodeagent.errors import AgentFailure, conflict, libvirt_errors

log = logging.getLogger(__name__)

READ_CHUNK_BYTES = 64 * 1024
SEND_RETRY_S = 0.01
SEND_TIMEOUT_S = 5.0
_WATCHED = (
    libvirt.VIR_STREAM_EVENT_READABLE
    | libvirt.VIR_STREAM_EVENT_ERROR
    | libvirt.VIR_STREAM_EVENT_HANGUP
)


class ConsoleStream:
    """One open console stream of a running domain; `output` yields bytes, then None at EOF.

    Opening raises AgentFailure: not_found (no domain), conflict (not running, or
    the console is busy and `force` is false), libvirt_error otherwise.
    """

    def __init__(
        self,
        conn: libvirt.virConnect,
        dom: libvirt.virDomain,
        loop: asyncio.AbstractEventLoop,
        *,
        force: bool = False,
    ) -> None:
        self.name = dom.name()
        self.output: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._loop = loop
        self._closed = threading.Event()
        self._lock = threading.Lock()
        if not dom.isActive():
            raise conflict(f"domain {self.name!r} is not running: it has no console")
        self._stream = conn.newStream(libvirt.VIR_STREAM_NONBLOCK)
        flags = libvirt.VIR_DOMAIN_CONSOLE_FORCE if force else libvirt.VIR_DOMAIN_CONSOLE_SAFE
        try:
            dom.openConsole(None, self._stream, flags)
        except libvirt.libvirtError as exc:
            self._abort_quietly()
            if exc.get_error_code() == libvirt.VIR_ERR_OPERATION_FAILED and "ctive console" in str(
                exc
            ):
                raise conflict(
                    f"domain {self.name!r} has an active console session elsewhere; "
                    "pass force=true to take it over"
                ) from exc
            raise
        self._stream.eventAddCallback(_WATCHED, self._on_event, None)

    def _on_event(self, stream: libvirt.virStream, events: int, _opaque: object) -> None:
        """Drain the stream into the queue (runs in libvirt's event loop thread)."""
        if events & libvirt.VIR_STREAM_EVENT_READABLE:
            while not self._closed.is_set():
                try:
                    data = stream.recv(READ_CHUNK_BYTES)
                except libvirt.libvirtError as exc:
                    log.info("console of %s: read failed: %s", self.name, exc)
                    self._end()
                    return
                if data == -2:  # would block: wait for the next READABLE event
                    break
                if not data:
                    self._end()
                    return
                self._loop.call_soon_threadsafe(self.output.put_nowait, bytes(data))
        if events & (libvirt.VIR_STREAM_EVENT_ERROR | libvirt.VIR_STREAM_EVENT_HANGUP):
            self._end()

    def _end(self) -> None:
        """Mark the stream ended: consumers get None once."""
        with self._lock:
            if self._closed.is_set():
                return
            self._closed.set()
        self._loop.call_soon_threadsafe(self.output.put_nowait, None)

    @property
    def closed(self) -> bool:
        """Return True once the guest side has ended or `close` was called."""
        return self._closed.is_set()

    def send(self, data: bytes) -> None:
        """Write `data` to the console (blocking up to SEND_TIMEOUT_S); conflict if closed."""
        view = memoryview(data)
        deadline = time.monotonic() + SEND_TIMEOUT_S
        while view:
            if self._closed.is_set():
                raise conflict(f"console of {self.name!r} is closed")
            with libvirt_errors(f"writing to the console of {self.name}"):
                sent = self._stream.send(bytes(view))
            if sent == -2:
                if time.monotonic() > deadline:
                    raise AgentFailure(
                        "unavailable", f"console of {self.name!r} accepts no input", retryable=True
                    )
                time.sleep(SEND_RETRY_S)
                continue
            view = view[sent:]

    def close(self) -> None:
        """Stop the stream (idempotent); the queue gets its final None."""
        self._end()
        self._abort_quietly()

    def _abort_quietly(self) -> None:
        for step in (self._stream.eventRemoveCallback, self._stream.abort):
            with contextlib.suppress(libvirt.libvirtError):
                step()


def open_console(
    conn: libvirt.virConnect, name: str, loop: asyncio.AbstractEventLoop, force: bool
) -> ConsoleStream:
    """Return an open console stream of domain `name` (see ConsoleStream for failures)."""
    with libvirt_errors(f"opening the console of {name}"):
        return ConsoleStream(conn, lookup_domain(conn, name), loop, force=force)


@dataclass
class ConsoleSessions:
    """The console sessions this agent serves: at most one per domain."""

    _open: dict[str, ConsoleStream] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def claim(self, name: str, force: bool) -> None:
        """Make room for a new session of `name`: conflict if one is open and not `force`.

        With `force` the open session is closed (its client sees the end of the stream).
        """
        with self._guard:
            current = self._open.get(name)
        if current is None or current.closed:
            return
        if not force:
            raise conflict(
                f"domain {name!r} already has a console session; pass force=true to take it over"
            )
        current.close()

    def add(self, stream: ConsoleStream) -> None:
        """Register `stream` as the open session of its domain."""
        with self._guard:
            self._open[stream.name] = stream

    def remove(self, stream: ConsoleStream) -> None:
        """Forget `stream` if it still is its domain's session, and close it."""
        with self._guard:
            if self._open.get(stream.name) is stream:
                del self._open[stream.name]
        stream.close()

    def active(self) -> list[str]:
        """Return the names of domains with an open session, sorted."""
        with self._guard:
            return sorted(name for name, stream in self._open.items() if not stream.closed)
