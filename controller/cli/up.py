"""`corral up`, `corral apply`, `corral plan`: run the controller on manifests."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.live import Live
from rich.table import Table

from controller.agentpool import AgentPool
from controller.cli.common import DbOption, StateDirOption, console, err_console, open_store_or_exit
from controller.cli.controller import DEFAULT_PARALLEL
from controller.cli.render import render_plan, status_table
from controller.cli.sourceopts import SourceOptions, with_source_options
from controller.cli.whatif import check_hosts_down, parse_what_if, render_what_if
from controller.leader import LeadHeld, RunTerm, hold_run_term
from controller.leasewatch import read_leases
from controller.localagent import LocalAgents
from controller.loop import Controller, PassResult, SourceSetting, policy_context
from controller.malloc import tune_malloc
from controller.observe import poll_hosts, read_observed
from controller.plan import Desired, plan
from controller.plan.planner import plan_what_if
from controller.store import StoreError, default_state_dir
from schemas.host import Host


def _controller(
    setting: SourceSetting, source: SourceOptions, resync_s: float = 30.0
) -> Controller:
    store = open_store_or_exit(source.db, source.state_dir)
    pool = AgentPool(cert_dir=source.certs)
    return Controller(
        store,
        [setting],
        pool,
        resync_s=resync_s,
        max_parallel=DEFAULT_PARALLEL,
        etcd=source.etcd(),
    )


def _hold_term(controller: Controller, on_lost: Callable[[], None] | None = None) -> RunTerm:
    """Claim this run's term of the store's lead (exit 2 if another controller holds it):
    its epoch fences the store and the agents' leases, as a replica's does."""
    try:
        return hold_run_term(controller, on_lost=on_lost)
    except (LeadHeld, StoreError) as exc:
        err_console.print(f"[red]error:[/] {exc}")
        controller.pool.close()
        controller.store.close()
        raise typer.Exit(2) from None


def _start_local_agents(controller: Controller, agents: LocalAgents) -> None:
    """Start agents for loopback hosts of the source (the embedded default)."""
    snapshot = controller.sources[0].source.snapshot()
    for loaded in snapshot.result.objects:
        if isinstance(loaded.resource, Host):
            note = agents.ensure(loaded.resource)
            if note:
                console.print(f"[dim]{note}[/]")


@with_source_options()
def up(
    source: SourceOptions,
    libvirt_uri: Annotated[
        str, typer.Option(help="libvirt URI for agents started on loopback hosts")
    ] = "qemu:///system",
    local_agents: Annotated[
        bool,
        typer.Option(
            "--local-agents/--no-local-agents",
            help="Start agents for hosts at http://127.0.0.1:PORT",
        ),
    ] = True,
    until_ready: Annotated[
        bool, typer.Option("--until-ready", help="Exit 0 once converged (1 on timeout)")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds --until-ready waits")] = 300.0,
    resync: Annotated[float, typer.Option(help="Seconds between resync passes")] = 30.0,
    api: Annotated[
        str | None, typer.Option("--api", help="Also serve the REST API on HOST:PORT")
    ] = None,
    api_certs: Annotated[
        Path | None, typer.Option("--api-certs", help="API server certs (TLS); else loopback HTTP")
    ] = None,
    poll: Annotated[
        float, typer.Option(help="Seconds between checks of a --git branch for new commits")
    ] = 1.0,
) -> None:
    """Run Corral on this machine: apply the manifests, converge, keep them converged."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    tune_malloc()
    setting = source.setting()
    if source.git is not None:
        # A directory is watched (inotify); a repository can only be asked.
        setting = replace(setting, poll_s=poll)
    controller = _controller(setting, source, resync)
    agents = LocalAgents(libvirt_uri, (source.state_dir or default_state_dir()) / "logs")
    stop = threading.Event()
    term = _hold_term(controller, on_lost=stop.set)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    start = time.monotonic()
    outcome = {"converged_at": None, "code": 0}
    watcher = None
    api_server = None
    if api:
        from controller.api.embed import start_embedded_api

        api_server = start_embedded_api(controller, api, api_certs, source.db, source.state_dir)
        console.print(f"Dashboard: {'https' if api_certs else 'http'}://{api}/ui/")
        from controller.history.sampler import start_sampling

        start_sampling(controller.store, controller.pool, stop)
    try:
        if local_agents:
            _start_local_agents(controller, agents)
        if source.path is not None:
            watcher = threading.Thread(target=_watch, args=(setting, controller, stop), daemon=True)
            watcher.start()
        console.print(f"[bold]corral up[/]: {setting.source.name} -> {controller.store.url}")

        with Live(
            status_table(controller.store), console=console, refresh_per_second=2, transient=False
        ) as live:

            def on_pass(result: PassResult) -> None:
                if api_server is not None:
                    api_server.observe_pass(result)
                live.update(_progress(controller, result, start))
                if result.settled and outcome["converged_at"] is None:
                    outcome["converged_at"] = time.monotonic() - start
                    if until_ready:
                        stop.set()
                if until_ready and time.monotonic() - start > timeout:
                    outcome["code"] = 1
                    stop.set()

            try:
                controller.run(stop, on_pass)
            except KeyboardInterrupt:
                stop.set()
        if outcome["converged_at"] is not None:
            console.print(f"[green]Converged[/] in {outcome['converged_at']:.1f}s.")
        elif until_ready:
            err_console.print(f"[red]Not converged after {timeout:.0f}s[/]; see `corral status`.")
    finally:
        stop.set()
        if api_server is not None:
            api_server.stop()
        agents.close()
        term.release()
        controller.pool.close()
        controller.store.close()
    raise typer.Exit(outcome["code"])


def _watch(setting: SourceSetting, controller: Controller, stop: threading.Event) -> None:
    for _ in setting.source.watch(stop):  # type: ignore[attr-defined]
        controller.trigger()


def _progress(controller: Controller, result: PassResult, start: float) -> Table:
    table = status_table(controller.store)
    elapsed = time.monotonic() - start
    if result.settled:
        table.caption = f"converged · {elapsed:.0f}s · watching for changes (Ctrl-C to stop)"
    else:
        acted = len(result.outcomes)
        failed = len(result.failed)
        table.caption = (
            f"reconciling · {elapsed:.0f}s · last pass {acted} actions"
            f"{f', {failed} failed' if failed else ''} · "
            f"{len(result.not_ready)} not ready"
        )
    return table


@with_source_options()
def apply(
    source: SourceOptions,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Pass until converged")] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for convergence")] = 300.0,
) -> None:
    """Apply the manifests once (agents must be running) and wait until converged.

    HA VMs keep running after it exits: their hosts' agents keep their fencing leases in
    etcd themselves. Nothing restarts them elsewhere while no controller runs, though.
    """
    setting = source.setting()
    controller = _controller(setting, source)
    term = _hold_term(controller)
    deadline = time.monotonic() + timeout
    try:
        while True:
            result = controller.reconcile()
            for outcome in result.outcomes:
                mark = "[green]ok[/]" if outcome.ok else "[red]failed[/]"
                console.print(
                    f"{mark} {outcome.action.type.value} {outcome.action.ref}"
                    f" on {outcome.action.host}: {outcome.error or outcome.action.message}"
                )
            if not wait or result.settled:
                break
            if time.monotonic() > deadline:
                err_console.print(
                    f"[red]Not converged after {timeout:.0f}s:[/] " + ", ".join(result.not_ready)
                )
                raise typer.Exit(1)
            time.sleep(min(result.requeue_after_s, 2.0))
        source = controller.store.get_source(setting.key_name)
        if source.status and source.status.get("errors"):
            for line in source.status["errors"]:
                err_console.print(line)
            raise typer.Exit(1)
        console.print(status_table(controller.store))
    finally:
        term.release()
        controller.pool.close()
        controller.store.close()


@with_source_options(prune=False)
def plan_command(
    source: SourceOptions,
    output: Annotated[str, typer.Option("-o", "--output", help="text or json")] = "text",
    what_if: Annotated[
        str | None,
        typer.Option(
            "--what-if",
            help="Instead of the plan, show the HA restarts losing these hosts would make "
            "and the VMs they could not place: host-2=down[,host-3=down]",
        ),
    ] = None,
) -> None:
    """Show what applying the manifests would do, with diffs; change nothing.

    With --what-if, show instead what losing those hosts at once would do: the HA
    restarts (VM -> host) and the HA VMs no host could take, with the scheduler's reason.
    """
    down = parse_what_if(what_if) if what_if is not None else None
    setting = source.setting()
    store = open_store_or_exit(source.db, source.state_dir)
    pool = AgentPool(cert_dir=source.certs)
    try:
        snapshot = setting.source.snapshot()
        if not snapshot.ok:
            for error in snapshot.result.errors:
                err_console.print(str(error))
            raise typer.Exit(1)
        loaded = [o.resource for o in snapshot.result.objects]
        objects = {(o.kind, o.metadata.name): o for o in loaded}
        hosts = [o for o in objects.values() if isinstance(o, Host)]
        stored = store.list().items
        others = {(s.kind, s.name): s.obj for s in stored if s.source != setting.key}
        desired = Desired(objects={**others, **objects}, revision=snapshot.revision)
        if down is not None:
            check_hosts_down(down, [n for k, n in desired.objects if k == "Host"])
        poll_hosts(store, hosts, lambda h: pool.client(h.metadata.name, h.spec.address))
        from datetime import UTC, datetime

        etcd = source.etcd()
        observed = read_observed(
            store, datetime.now(UTC), read_leases(etcd) if etcd is not None else None
        )
        if down is not None:
            outcome = plan_what_if(desired, observed, policy_context(stored), down)
            render_what_if(outcome, output)
            return
        result = plan(desired, observed, policy_context(stored))
        render_plan(result, output)
    finally:
        pool.close()
        store.close()


def reconcile_now(
    db: DbOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Ask a running controller for a pass now (any change to its store wakes it)."""
    store = open_store_or_exit(db, state_dir)
    try:
        store.record_event(
            "Controller",
            "controller",
            "Normal",
            "ReconcileRequested",
            "An operator asked for a reconcile pass now",
            component="cli",
        )
        console.print("Requested a reconcile pass.")
    finally:
        store.close()


def register(app: typer.Typer) -> None:
    app.command("up")(up)
    app.command("apply")(apply)
    app.command("plan")(plan_command)
    app.command("reconcile")(reconcile_now)
