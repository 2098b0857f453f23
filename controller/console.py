"""Consoles from the controller's side: reaching an agent's console websockets, and the
terminal detach rule shared by `corral console`.

The controller opens the agent's websocket with its mTLS client certificate (the
same `cert_dir` its AgentClient uses) and relays frames between the agent and the
user's websocket unchanged: binary frames are console bytes, text frames are
`ConsoleMessage` JSON (see agentapi.consoles).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import websockets
from websockets.asyncio.client import ClientConnection, connect

from controller.agents import AgentClient, client_ssl_context

DETACH_KEY = b"\x1d"
"""Ctrl-], as in virsh console and telnet: detaches the terminal, the guest keeps running."""
OPEN_TIMEOUT_S = 10.0


class ConsoleUnavailable(Exception):
    """The agent's console websocket could not be opened (refused, unreachable, TLS)."""

    def __init__(self, message: str, *, host: str | None = None, vm: str | None = None) -> None:
        super().__init__(message)
        self.host = host
        self.vm = vm


def websocket_url(base_url: str, path: str, params: dict[str, str] | None = None) -> str:
    """Return the ws:// or wss:// URL of `path` under an http(s) base URL."""
    if base_url.startswith("https://"):
        url = "wss://" + base_url[len("https://") :]
    elif base_url.startswith("http://"):
        url = "ws://" + base_url[len("http://") :]
    else:
        raise ValueError(f"base URL must be http:// or https://, got {base_url!r}")
    query = f"?{urlencode(params)}" if params else ""
    return url.rstrip("/") + "/" + path.lstrip("/") + query


def agent_console_path(vm: str) -> str:
    """Return the agent's serial console path of domain `vm`."""
    return f"/v1/domains/{quote(vm, safe='')}/console"


def agent_graphics_path(vm: str) -> str:
    """Return the agent's graphics proxy path of domain `vm`."""
    return f"/v1/domains/{quote(vm, safe='')}/graphics"


def _ssl_for(client: AgentClient) -> ssl.SSLContext | None:
    if client.base_url.startswith("https://") and client.cert_dir is not None:
        return client_ssl_context(client.cert_dir)
    return None


async def open_agent_websocket(
    client: AgentClient,
    path: str,
    params: dict[str, str] | None = None,
    subprotocols: list[str] | None = None,
) -> ClientConnection:
    """Return an open websocket to `path` on the agent behind `client` (mTLS if https).

    Raises ConsoleUnavailable when the agent cannot be reached or refuses the handshake.
    """
    url = websocket_url(client.base_url, path, params)
    kwargs: dict[str, Any] = {"open_timeout": OPEN_TIMEOUT_S, "max_size": 2**22}
    context = _ssl_for(client)
    if context is not None:
        kwargs["ssl"] = context
    if subprotocols:
        kwargs["subprotocols"] = subprotocols
    try:
        return await connect(url, **kwargs)
    except websockets.InvalidStatus as exc:
        raise ConsoleUnavailable(
            f"agent refused {path}: HTTP {exc.response.status_code}", host=client.host
        ) from exc
    except (OSError, TimeoutError, websockets.WebSocketException) as exc:
        raise ConsoleUnavailable(f"cannot reach {url}: {exc}", host=client.host) from exc


Sender = Callable[[bytes | str], Awaitable[None]]
Receiver = Callable[[], Awaitable[bytes | str | None]]


@dataclass
class RelayResult:
    """How a relay ended: which side closed first, and bytes each way."""

    ended_by: str
    to_agent_bytes: int = 0
    from_agent_bytes: int = 0


async def relay(agent: ClientConnection, receive_user: Receiver, send_user: Sender) -> RelayResult:
    """Copy frames between the agent websocket and the user until either side ends.

    `receive_user` returns the next user frame, or None when the user has gone.
    """
    result = RelayResult(ended_by="")

    async def from_agent() -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for frame in agent:
                await send_user(frame)
                if isinstance(frame, bytes):
                    result.from_agent_bytes += len(frame)
        result.ended_by = result.ended_by or "agent"

    async def to_agent() -> None:
        while (frame := await receive_user()) is not None:
            await agent.send(frame)
            if isinstance(frame, bytes):
                result.to_agent_bytes += len(frame)
        result.ended_by = result.ended_by or "user"

    tasks = [asyncio.ensure_future(from_agent()), asyncio.ensure_future(to_agent())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await agent.close()
    return result


def split_at_detach(data: bytes, key: bytes = DETACH_KEY) -> tuple[bytes, bool]:
    """Return (bytes to send before the detach key, whether the key was typed)."""
    index = data.find(key)
    if index < 0:
        return data, False
    return data[:index], True


VM_LABEL = "corral.dev/vm"
"""The domain label naming the VirtualMachine a domain belongs to (see controller.plan)."""


@dataclass(frozen=True)
class ConsoleTarget:
    """Where a VM's console is: the host, its agent address and the domain's name there."""

    host: str
    address: str
    domain: str


class NoConsole(Exception):
    """The VM does not run anywhere the controller can reach: no console to attach to."""


def find_console_target(
    vm: str, observed: dict[str, dict[str, Any] | None], addresses: dict[str, str]
) -> ConsoleTarget:
    """Return the running domain of VM `vm` from the hosts' observed states.

    `observed` maps a host to its last HostState as a JSON dict (None if never
    reached); `addresses` maps a host to its agent URL. A domain belongs to `vm` by
    its `corral.dev/vm` label, or by its name when unlabelled. Raises NoConsole
    naming why (not running, host unknown).
    """
    seen: list[str] = []
    for host in sorted(observed):
        for domain in (observed[host] or {}).get("domains", []):
            labels = domain.get("metadata") or {}
            if labels.get(VM_LABEL, domain.get("name")) != vm:
                continue
            seen.append(f"{domain.get('state')} on {host}")
            if domain.get("state") not in ("running", "paused", "blocked"):
                continue
            if host not in addresses:
                raise NoConsole(f"VirtualMachine {vm} runs on {host}, which is not a known host")
            return ConsoleTarget(host=host, address=addresses[host], domain=domain["name"])
    where = f" ({', '.join(seen)})" if seen else ""
    raise NoConsole(f"VirtualMachine {vm} is not running on any reachable host{where}")
