"""One AgentClient per host, built from the Host objects' addresses and the fleet certs."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import httpx

from controller.agents import AgentClient, AgentUnavailable


class AgentPool:
    """Hands out a client per host name; a changed address gets a new client.

    `cert_dir` holds the controller's client certificate (`corral certs controller`);
    without it only plain-HTTP agents (`--insecure-dev`, loopback) can be reached.
    `transport_for` lets tests route a host to an in-process agent app.
    """

    def __init__(
        self,
        *,
        cert_dir: Path | str | None = None,
        connect_timeout_s: float = 2.0,
        timeout_s: float = 30.0,
        transport_for: Callable[[str], httpx.BaseTransport | None] | None = None,
        epoch: Callable[[], int | None] | None = None,
    ) -> None:
        self.epoch = epoch
        self.cert_dir = cert_dir
        self.connect_timeout_s = connect_timeout_s
        self.timeout_s = timeout_s
        self._transport_for = transport_for
        self._clients: dict[str, tuple[str, AgentClient]] = {}
        self._lock = threading.Lock()

    def client(self, host: str, address: str) -> AgentClient:
        """Return the client of `host` at `address`; raise AgentUnavailable if unusable."""
        with self._lock:
            cached = self._clients.get(host)
            if cached and cached[0] == address:
                return cached[1]
            if cached:
                cached[1].close()
            if address.startswith("https://") and self.cert_dir is None:
                raise AgentUnavailable(
                    f"{address} needs mutual TLS: start the controller with --certs DIR "
                    "(made by `corral certs controller`)",
                    host=host,
                )
            try:
                client = AgentClient(
                    address,
                    host=host,
                    cert_dir=self.cert_dir if address.startswith("https://") else None,
                    connect_timeout_s=self.connect_timeout_s,
                    timeout_s=self.timeout_s,
                    transport=self._transport_for(host) if self._transport_for else None,
                    epoch=lambda: self.epoch() if self.epoch is not None else None,
                )
            except (OSError, ValueError) as exc:
                raise AgentUnavailable(
                    f"cannot set up a client for {address}: {exc}", host=host
                ) from exc
            self._clients[host] = (address, client)
            return client

    def close(self) -> None:
        """Close every client."""
        with self._lock:
            for _, client in self._clients.values():
                client.close()
            self._clients.clear()
