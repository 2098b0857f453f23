"""`corral lab`: the tiny test guest and a multi-host libvirt lab on this machine (root only)."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from controller.lab.agents import AGENT_PORT, LabAgents
from controller.lab.guest import GuestBuildError, cache_dir_default, ensure_tiny_guest
from controller.lab.hostconf import LabConfigError
from controller.lab.libvirtd import DEFAULT_LAB_NAME, DEFAULT_SUBNET, Lab, LabError
from controller.lab.netns import LabCommandError

lab_app = typer.Typer(
    help="A lab of real libvirt hosts in network namespaces, and the tiny guest for it.",
    no_args_is_help=True,
)

NameOption = typer.Option(DEFAULT_LAB_NAME, "--name", help="Lab name (1-6 of [a-z0-9]).")
SubnetOption = typer.Option(DEFAULT_SUBNET, "--subnet", help="The lab bridge's /24.")


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _require_root() -> None:
    if os.geteuid() != 0:
        _fail("the lab needs root (network namespaces, mounts, libvirtd)")


@lab_app.command("guest")
def guest(
    directory: Path = typer.Option(
        None, "--dir", help="Cache dir (default $CORRAL_GUEST_DIR or /var/cache/corral/guest)."
    ),
    refresh: bool = typer.Option(False, help="Fetch a newer kernel if apt knows one."),
) -> None:
    """Build (once, cached) the tiny guest and print its kernel and initrd paths."""
    try:
        image = ensure_tiny_guest(directory or cache_dir_default(), refresh=refresh)
    except (GuestBuildError, OSError) as exc:
        _fail(str(exc))
    typer.echo(f"kernel: {image.kernel}")
    typer.echo(f"initrd: {image.initrd}")
    typer.echo(f"cmdline: {image.cmdline}")


@lab_app.command("up")
def up(
    hosts: int = typer.Option(2, "--hosts", help="Number of hosts."),
    name: str = NameOption,
    subnet: str = SubnetOption,
    agents: bool = typer.Option(True, "--agents/--no-agents", help="Run a Corral agent in each."),
    lease_ttl: int = typer.Option(10, "--lease-ttl", help="Lease TTL (s) in the Host manifests."),
) -> None:
    """Start (or repair) hosts 1..N, each with its own libvirtd and Corral agent (mTLS), print
    their URIs, and write their Host manifests (see `corral lab manifests`)."""
    _require_root()
    try:
        lab = Lab(name, subnet)
        started = lab.up(hosts)
        if agents:
            lab_agents = LabAgents(lab, lease_ttl_s=lease_ttl)
            lab_agents.up([host.name for host in started])
            manifests = lab.root / "hosts.yaml"
            manifests.write_text(lab_agents.host_manifests(lease_ttl))
    except (LabConfigError, LabError, LabCommandError) as exc:
        _fail(str(exc))
    for host in started:
        typer.echo(f"{host.name}\t{host.ip}\t{host.uri}\tnsenter -t {host.anchor_pid} -m -n")
    etcd_tls = lab.etcd_client_tls()
    typer.echo(
        f"etcd (mTLS): --etcd-endpoints {','.join(lab.etcd_endpoints())} --etcd-ca "
        f"{etcd_tls.ca} --etcd-cert {etcd_tls.cert} --etcd-key {etcd_tls.key}",
        err=True,
    )
    if agents:
        typer.echo(
            f"agents: https://IP:{AGENT_PORT} (mTLS); Host manifests: {manifests}; controller "
            f"certs: {lab_agents.certs / 'controller'}",
            err=True,
        )


@lab_app.command("manifests")
def manifests(
    name: str = NameOption,
    subnet: str = SubnetOption,
    lease_ttl: int = typer.Option(10, "--lease-ttl", help="Lease TTL (s) of each Host."),
) -> None:
    """Print the Host manifests of the lab's hosts (agent addresses, TCG, lease fencing)."""
    try:
        lab = Lab(name, subnet)
        if not lab.hosts:
            _fail(f"lab {name}: no hosts (corral lab up)")
        typer.echo(LabAgents(lab).host_manifests(lease_ttl), nl=False)
    except LabConfigError as exc:
        _fail(str(exc))


@lab_app.command("status")
def status(name: str = NameOption, subnet: str = SubnetOption) -> None:
    """Print the lab's running hosts."""
    try:
        hosts = Lab(name, subnet).hosts
    except LabConfigError as exc:
        _fail(str(exc))
    if not hosts:
        typer.echo(f"lab {name}: no hosts")
    for host in hosts:
        typer.echo(f"{host.name}\t{host.ip}\t{host.uri}")


@lab_app.command("down")
def down(name: str = NameOption, subnet: str = SubnetOption) -> None:
    """Remove every namespace, link, process and dir of the lab (also after a crash)."""
    _require_root()
    try:
        lab = Lab(name, subnet)
        LabAgents(lab).remove_cuts()
        lab.down()  # kills the agents with every other process in the lab's namespaces
    except (LabConfigError, LabError, LabCommandError) as exc:
        _fail(str(exc))
    typer.echo(f"lab {name}: down")


def register(app: typer.Typer) -> None:
    """Adds the `lab` command group to the corral app."""
    app.add_typer(lab_app, name="lab")
