"""Consoles from the controller's side: finding where a VM's console is, relaying an
agent's console websocket, and the terminal detach rule shared by `corral console`.

The controller opens the agent's websocket through its AgentClient (`open_console`,
`open_graphics`: mTLS with the same `cert_dir`) and relays frames between the agent and
the user's websocket unchanged: binary frames are console bytes, text frames are
`ConsoleMessage` JSON (see agentapi.consoles).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

DETACH_KEY = b"\x1d"
"""Ctrl-], as in virsh console and telnet: detaches the terminal, the guest keeps running."""


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
