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
    host: Annotated[
        str | None, typer.Option(help="this host's name (its Host object) [default: hostname]")
    ] = None,
    lease_ttl: Annotated[int, typer.Option(help="etcd fencing lease TTL in seconds")] = 10,
    fence_margin: Annotated[
        float | None,
        typer.Option(
            help="fence this many seconds before the lease can expire [default: 20% of TTL, >= 1]"
        ),
    ] = None,
    etcd_failover: Annotated[
        float,
        typer.Option(
            help="seconds an etcd leader change may hold keepalive acknowledgements back "
            "(2.5 with etcd's default election timeout); the TTL must outlast it"
        ),
    ] = 2.5,
    etcd_endpoints: Annotated[
        str | None,
        typer.Option(
            envvar="CORRAL_ETCD_ENDPOINTS",
            help="etcd client URLs, comma-separated; none: no fencing (single host)",
        ),
    ] = None,
    etcd_ca: Annotated[Path | None, typer.Option(envvar="CORRAL_ETCD_CA", help="etcd CA")] = None,
    etcd_cert: Annotated[
        Path | None, typer.Option(envvar="CORRAL_ETCD_CERT", help="etcd client certificate")
    ] = None,
    etcd_key: Annotated[
        Path | None, typer.Option(envvar="CORRAL_ETCD_KEY", help="etcd client key")
    ] = None,
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
            help="where the etcd lease survives agent restarts "
            "[default: /run/corral-agent/lease-<uri and address hash>.json]"
        ),
    ] = None,
) -> None:
    """Run the node agent: the HTTPS API over this host's libvirt."""
    import socket

    from arbiter import EtcdSettingError, make_settings
    from nodeagent.agent import Agent
    from nodeagent.errors import AgentFailure
    from nodeagent.lease import LeaseSettingError, lease_timing, load_lease
    from nodeagent.serve import ServeConfigError, build_server

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        timing = lease_timing(lease_ttl, fence_margin, etcd_failover)
        etcd = None
        if etcd_endpoints:
            etcd = make_settings(
                etcd_endpoints,
                ca_file=etcd_ca,
                cert_file=etcd_cert,
                key_file=etcd_key,
                names=ETCD_OPTION_NAMES,
            )
        elif etcd_ca or etcd_cert or etcd_key:
            raise EtcdSettingError("--etcd-endpoints", "etcd TLS files given without endpoints")
    except LeaseSettingError as exc:
        option = {"lease_ttl_s": "--lease-ttl", "fence_margin_s": "--fence-margin"}[exc.setting]
        typer.echo(f"corral agent: {option}: {str(exc).split(': ', 1)[1]}", err=True)
        raise typer.Exit(2) from exc
    except EtcdSettingError as exc:
        typer.echo(f"corral agent: {exc}", err=True)
        raise typer.Exit(2) from exc
    base = lease_file or default_lease_file(libvirt_uri, listen)
    if etcd is None and load_lease(base).lease_id is not None:
        # Its HA VMs may run under that lease: without etcd this agent would never fence
        # them, while the controller restarts them elsewhere once the lease expires.
        typer.echo(
            f"corral agent: --etcd-endpoints: this host held an etcd lease in this boot "
            f"({base}); start the agent with etcd, or remove that file once its HA VMs are "
            "stopped",
            err=True,
        )
        raise typer.Exit(2)
    agent = Agent(
        libvirt_uri,
        hooks_dir=hooks_dir,
        hook_timeout_s=hook_timeout,
        host=host or socket.gethostname(),
        lease=timing,
        etcd=etcd,
        migration_uri=migration_uri,
        lease_file=base,
        term_file=base.with_name(base.stem + ".term"),
    )
    try:
        server = build_server(agent, listen, certs, insecure_dev=insecure_dev, log_level=log_level)
        agent.start()
    except (ServeConfigError, AgentFailure, EtcdSettingError) as exc:
        typer.echo(f"corral agent: {exc}", err=True)
        raise typer.Exit(2) from exc
    try:
        server.run()
    finally:
        agent.close()


ETCD_OPTION_NAMES = {
    "endpoints": "--etcd-endpoints",
    "ca_file": "--etcd-ca",
    "cert_file": "--etcd-cert",
    "key_file": "--etcd-key",
}


def default_lease_file(libvirt_uri: str, listen: str) -> Path:
    """Return the lease file of the agent for this libvirt URI and listen address."""
    import hashlib

    key = hashlib.sha256(f"{libvirt_uri}\0{listen}".encode()).hexdigest()[:12]
    return Path("/run/corral-agent") / f"lease-{key}.json"
