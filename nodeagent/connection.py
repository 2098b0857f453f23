"""The agent's libvirt connection: opened with a timeout, reopened when it dies.

libvirt has no connect timeout (a partitioned remote host makes `open` hang
forever), so opening runs in a helper thread that is abandoned on timeout.
Keepalive and close callbacks need libvirt's event loop, started once per process.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import libvirt

from nodeagent.errors import AgentFailure

log = logging.getLogger(__name__)

_event_loop_lock = threading.Lock()
_event_loop_started = False


def ensure_event_loop() -> None:
    """Register libvirt's default event implementation and run it in a daemon thread (once)."""
    global _event_loop_started
    with _event_loop_lock:
        if _event_loop_started:
            return
        libvirt.virEventRegisterDefaultImpl()
        thread = threading.Thread(target=_run_event_loop, name="libvirt-events", daemon=True)
        thread.start()
        _event_loop_started = True


def _run_event_loop() -> None:
    while True:
        libvirt.virEventRunDefaultImpl()


def open_with_timeout(uri: str, timeout_s: float) -> libvirt.virConnect:
    """Return a new connection to `uri`; AgentFailure(unavailable) if it fails or hangs."""
    result: dict[str, object] = {}
    done = threading.Event()
    abandoned = threading.Event()

    def _open() -> None:
        try:
            conn = libvirt.open(uri)
        except libvirt.libvirtError as exc:
            result["error"] = exc
        else:
            if abandoned.is_set():
                conn.close()
            result["conn"] = conn
        done.set()

    threading.Thread(target=_open, name="libvirt-open", daemon=True).start()
    if not done.wait(timeout_s):
        abandoned.set()
        raise AgentFailure(
            "unavailable", f"connecting to {uri} timed out after {timeout_s:g} s", retryable=True
        )
    if "error" in result:
        exc = result["error"]
        assert isinstance(exc, libvirt.libvirtError)
        raise AgentFailure(
            "unavailable",
            f"cannot connect to {uri}: {exc.get_error_message()}",
            retryable=True,
            libvirt_code=exc.get_error_code(),
        )
    conn = result["conn"]
    assert isinstance(conn, libvirt.virConnect)
    return conn


class Connection:
    """A lazily opened libvirt connection that reopens itself after it is lost.

    `on_open` callbacks run after every (re)open, e.g. to register event callbacks
    again; `on_lost` runs when a previously open connection is found dead.
    """

    def __init__(
        self,
        uri: str,
        *,
        open_timeout_s: float = 10.0,
        on_open: list[Callable[[libvirt.virConnect], None]] | None = None,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self.uri = uri
        self.open_timeout_s = open_timeout_s
        self.on_open = on_open or []
        self.on_lost = on_lost
        self._conn: libvirt.virConnect | None = None
        self._lock = threading.Lock()

    def get(self) -> libvirt.virConnect:
        """Return a live connection, reopening it if needed; AgentFailure(unavailable) if not."""
        conn = self._conn
        if conn is not None and _alive(conn):
            return conn
        with self._lock:
            if self._conn is not None and _alive(self._conn):
                return self._conn
            if self._conn is not None:
                log.warning("libvirt connection to %s lost; reconnecting", self.uri)
                self._conn = None
                if self.on_lost is not None:
                    self.on_lost()
            conn = open_with_timeout(self.uri, self.open_timeout_s)
            if not self.uri.startswith("test:"):
                # Without keepalive a dead remote libvirtd is only noticed by TCP timeouts.
                conn.setKeepAlive(5, 3)
            for callback in self.on_open:
                callback(conn)
            self._conn = conn
            return conn

    def connected(self) -> bool:
        """Return whether a live connection is open now (without opening one)."""
        conn = self._conn
        return conn is not None and _alive(conn)

    def close(self) -> None:
        """Close the connection if open."""
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.close()
                except libvirt.libvirtError:
                    log.debug("closing libvirt connection failed", exc_info=True)
                self._conn = None


def _alive(conn: libvirt.virConnect) -> bool:
    try:
        return bool(conn.isAlive())
    except libvirt.libvirtError:
        return False
