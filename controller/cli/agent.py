"""`corral agent`: run the node agent on this host."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add the `agent` command to `app`."""
    app.command("agent")(run_agent)


def run_agent(
    libvirt_uri: Annotated[str, typer.Option(help="libvirt URI this agent owns")] = (
        "qemu:///system"
    ),
    listen: Annotated[str, typer.Option(help="HOST:PORT to serve on")] = "0.0.0.0:8443",
    certs: Annotated[
        Path | None, typer.Option(help="dir with ca.crt, agent.crt, agent.key (corral certs host)")
    ] = None,
    hooks_dir: Annotated[Path | None, typer.Option(help="hook scripts by hook point")] = None,
    hook_timeout: Annotated[float, typer.Option(help="seconds per hook script")] = 30.0,
    lease_ttl: Annotated[float, typer.Option(help="fencing lease TTL in seconds")] = 10.0,
    migration_uri: Annotated[
        str | None, typer.Option(help="libvirt URI peers use to migrate to this host")
    ] = None,
    insecure_dev: Annotated[
        bool, typer.Option(help="plain HTTP without client auth, loopback only")
    ] = False,
    log_level: Annotated[str, typer.Option(help="debug, info, warning")] = "info",
    lease_file: Annotated[
        Path | None,
        typer.Option(
            help="where the granted lease survives agent restarts "
            "[default: /run/corral-agent/lease-<uri and address hash>.json]"
        ),
    ] = None,
) -> None:
    """Run the node agent: the HTTPS API over this host's libvirt."""
    from nodeagent.agent import Agent
    from nodeagent.errors import AgentFailure
    from nodeagent.serve import ServeConfigError, build_server

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    agent = Agent(
        libvirt_uri,
        hooks_dir=hooks_dir,
        hook_timeout_s=hook_timeout,
        lease_ttl_s=lease_ttl,
        migration_uri=migration_uri,
        lease_file=lease_file or default_lease_file(libvirt_uri, listen),
    )
    try:
        server = build_server(agent, listen, certs, insecure_dev=insecure_dev, log_level=log_level)
        agent.start()
    except (ServeConfigError, AgentFailure) as exc:
        typer.echo(f"corral agent: {exc}", err=True)
        raise typer.Exit(2) from exc
    try:
        server.run()
    finally:
        agent.close()


def default_lease_file(libvirt_uri: str, listen: str) -> Path:
    """Return the lease file of the agent for this libvirt URI and listen address."""
    import hashlib

    key = hashlib.sha256(f"{libvirt_uri}\0{listen}".encode()).hexdigest()[:12]
    return Path("/run/corral-agent") / f"lease-{key}.json"
