"""The controller's side of a served simulated fleet (controller.sim.serve): an httpx
transport per simulated host. It imports nothing of the simulation, so the process that
uses it holds only the controller."""

from __future__ import annotations

import httpx

SIM_SUFFIX = ".sim"
"""Simulated hosts are addressed as http://<name>.sim:<port> (controller.sim.workload)."""


class RoutedTransport(httpx.HTTPTransport):
    """Sends one simulated host's requests to the fleet server at 127.0.0.1:`port`,
    keeping the host's name in the Host header (one per host, as a real agent's client
    has its own connections: one pool shared by 1,000 hosts costs a scan of all its
    connections per request)."""

    def __init__(self, port: int, max_connections: int = 16) -> None:
        super().__init__(
            verify=False,  # plain HTTP: no TLS context (and no CA bundle) per host
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
        )
        self.port = port

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(host="127.0.0.1", port=self.port)
        return super().handle_request(request)
