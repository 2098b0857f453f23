"""`corral console VM`: attach this terminal to a VM's serial console through the API.

The terminal goes into raw mode so that every key reaches the guest; Ctrl-]
detaches (the guest keeps running) and restores the terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import ssl
import sys
import termios
import tty
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
import websockets
from websockets.asyncio.client import ClientConnection, connect

from controller.agents import websocket_url
from controller.cli.common import err_console
from controller.console import DETACH_KEY, split_at_detach

ApiOpt = Annotated[
    str,
    typer.Option("--api", envvar="CORRAL_API", help="API base URL, e.g. https://corral:8480"),
]
TokenOpt = Annotated[
    str, typer.Option("--token", envvar="CORRAL_TOKEN", help="Bearer token (operator role)")
]
CaOpt = Annotated[
    Path | None, typer.Option("--ca", help="CA certificate the API's TLS certificate is from")
]


class ConsoleExit(Exception):
    """The session ended: `code` is the process exit status, `message` says why."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@contextlib.contextmanager
def raw_terminal(fd: int) -> Iterator[None]:
    """Put terminal `fd` in raw mode for the block (nothing if it is not a terminal)."""
    if not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


async def _from_terminal(ws: ClientConnection, fd_in: int) -> str:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    loop.add_reader(fd_in, lambda: queue.put_nowait(os.read(fd_in, 4096)))
    try:
        while True:
            data = await queue.get()
            if not data:
                return "end of input"
            before, detached = split_at_detach(data)
            if before:
                await ws.send(before)
            if detached:
                return "detached"
    finally:
        loop.remove_reader(fd_in)


async def _to_terminal(ws: ClientConnection, fd_out: int) -> str:
    async for frame in ws:
        if isinstance(frame, bytes):
            os.write(fd_out, frame)
            continue
        message = json.loads(frame)
        if message.get("type") == "error":
            raise ConsoleExit(1, message.get("message", "console refused"))
        if message.get("type") == "closed":
            return message.get("message") or "console closed"
    return "the connection closed"


async def attach(url: str, token: str, ssl_ca: Path | None, fd_in: int, fd_out: int) -> str:
    """Relay terminal `fd_in`/`fd_out` to the console websocket at `url`; return why it ended.

    Raises ConsoleExit when the API refuses the console or cannot be reached.
    """
    kwargs: dict = {"additional_headers": {"Authorization": f"Bearer {token}"}}
    if url.startswith("wss://"):
        kwargs["ssl"] = ssl.create_default_context(cafile=str(ssl_ca) if ssl_ca else None)
    try:
        ws = await connect(url, open_timeout=15, **kwargs)
    except websockets.InvalidStatus as exc:
        raise ConsoleExit(1, _refusal(exc)) from exc
    except (OSError, TimeoutError, websockets.WebSocketException) as exc:
        raise ConsoleExit(1, f"cannot reach {url}: {exc}") from exc
    async with ws:
        first = await ws.recv()
        if isinstance(first, str) and json.loads(first).get("type") == "error":
            raise ConsoleExit(1, json.loads(first).get("message", "console refused"))
        err_console.print(
            f"Connected to the console (escape character is ^{chr(DETACH_KEY[0] + 64)})",
            highlight=False,
        )
        tasks = [
            asyncio.ensure_future(_from_terminal(ws, fd_in)),
            asyncio.ensure_future(_to_terminal(ws, fd_out)),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return next(iter(done)).result()


def _refusal(exc: websockets.InvalidStatus) -> str:
    response = exc.response
    try:
        message = json.loads(response.body or b"{}").get("message")
    except ValueError:
        message = None
    return f"HTTP {response.status_code}: {message or 'console refused'}"


def console_cmd(
    vm: Annotated[str, typer.Argument(help="VirtualMachine name")],
    api: ApiOpt = "http://127.0.0.1:8480",
    token: TokenOpt = "",
    ca: CaOpt = None,
    force: Annotated[
        bool, typer.Option("--force", help="Take the console over from another session")
    ] = False,
) -> None:
    """Attach to a VM's serial console (Ctrl-] detaches; the VM keeps running)."""
    params = {"force": "true"} if force else None
    try:
        url = websocket_url(api, f"/api/v1/virtualmachines/{vm}/console", params)
    except ValueError as exc:
        err_console.print(f"[red]error:[/] --api: {exc}")
        raise typer.Exit(2) from exc
    if not token:
        err_console.print("[red]error:[/] --token (or $CORRAL_TOKEN) is required")
        raise typer.Exit(2)
    fd_in, fd_out = sys.stdin.fileno(), sys.stdout.fileno()
    try:
        with raw_terminal(fd_in):
            why = asyncio.run(attach(url, token, ca, fd_in, fd_out))
    except ConsoleExit as exc:
        err_console.print(f"\r\n[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(exc.code) from exc
    err_console.print(f"\r\nConsole of {vm}: {why}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add `corral console` to the CLI."""
    app.command("console")(console_cmd)
