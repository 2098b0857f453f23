"""A simulated fleet served over real HTTP from its own process.

In-process (`SimFleet.transport_for`), the simulated hosts spend the controller's own
CPU and memory: fine for fault tests, wrong for measuring the controller. Here one
server answers every simulated host's agent API on 127.0.0.1, telling hosts apart by
the Host header (`h0001.sim:8470`), and a `RoutedTransport` per host sends a
controller's requests there over TCP, so the controller's process holds only the
controller.

`python -m controller.sim.serve --hosts h0000,h0001 [--latency-scale S]` prints the
port it listens on, then serves until its standard input closes. `GET /_sim/running` and
`GET /_sim/starts` report the fleet's domains for a benchmark's checks; they are the
simulation's own paths, not the agent's.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from controller.sim.fleet import SimFleet
from controller.sim.latency import Latency
from controller.sim.routed import SIM_SUFFIX


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes; with Nagle's algorithm the body then waits
    # for the client's delayed ACK (40 ms on Linux), as no real agent's answer does.
    disable_nagle_algorithm = True
    server: _FleetServer

    def log_message(self, format: str, *args: object) -> None:
        return

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        content = self.rfile.read(length) if length else b""
        if self.path.startswith("/_sim/"):
            self._control()
            return
        name = (self.headers.get("host") or "").split(":", 1)[0].removesuffix(SIM_SUFFIX)
        transport = self.server.fleet.transport_for(name)
        if transport is None:
            self._reply(404, b'{"type":"not_found","message":"no such simulated host"}')
            return
        request = httpx.Request(
            self.command,
            f"http://{self.headers.get('host')}{self.path}",
            headers=[(k, v) for k, v in self.headers.items() if k.lower() != "host"],
            content=content,
        )
        try:
            response = transport.handle_request(request)
        except httpx.TransportError:
            # A cut link or a lost answer: the connection drops without a reply.
            self.close_connection = True
            return
        self._reply(response.status_code, response.content, response.headers.get("content-type"))

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    def _control(self) -> None:
        fleet = self.server.fleet
        views = {"/_sim/running": fleet.running, "/_sim/starts": fleet.starts}
        view = views.get(self.path)
        if view is None:
            self._reply(404, b"{}")
        else:
            self._reply(200, json.dumps(view()).encode())

    def _reply(self, status: int, body: bytes, content_type: str | None = None) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type or "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _FleetServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def __init__(self, fleet: SimFleet, host: str, port: int) -> None:
        self.fleet = fleet
        super().__init__((host, port), _Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        """A client closing its idle keep-alive connections is no error; others are."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def serve_fleet(fleet: SimFleet, host: str = "127.0.0.1", port: int = 0) -> _FleetServer:
    """Start serving `fleet` in a daemon thread; return the server (`.server_address`)."""
    threading.stack_size(512 * 1024)  # one thread per connection; most of them idle
    server = _FleetServer(fleet, host, port)
    threading.Thread(target=server.serve_forever, name="sim-server", daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", required=True, help="comma-separated host names")
    parser.add_argument("--latency-scale", type=float, default=1.0)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    fleet = SimFleet(args.hosts.split(","), latency=Latency().scaled(args.latency_scale))
    server = serve_fleet(fleet, port=args.port)
    print(server.server_address[1], flush=True)
    # Serve until standard input closes: a parent that dies takes its fleet with it.
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    sys.exit(main())
