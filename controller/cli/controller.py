"""`corral controller`: one replica of a highly available controller on a shared store.

Run several replicas on one PostgreSQL (`--db postgresql://...`), each with its own
`--identity` and `--state-dir`. They elect one leader through a lease row in the store
(controller.leader): the leader runs the reconcile loop; the others stand by, trying to
claim the lease every `--lease-ttl / 3` seconds. Each new leader gets the next epoch,
and the epoch is the fencing token:

- the leader's store refuses its writes once the epoch moved on (`Fenced`), so a
  deposed leader that wakes up late (a pause, a partition) changes nothing;
- its mutating agent calls carry the epoch, which an agent refuses once it has seen a
  newer one, so a deposed leader cannot act on the hosts either.

The hosts' fencing leases are not the controller's: each agent keeps its own alive in
etcd (`--etcd-endpoints`), and the leader only watches them. No replica running at all
stops no VM.

Failover: when the leader dies, its lease runs out after at most `--lease-ttl` seconds
from its last renewal, and a standby takes over within another `--lease-ttl / 3`; its
first pass re-reads everything (level-triggered), so nothing the dead leader left half
done is lost or repeated. A clean stop (SIGTERM, Ctrl-C) releases the lease at once, so
a standby takes over on its next try. tests/e2e/test_controller_failover.py runs
`corral controller` processes on PostgreSQL with a real agent: after SIGKILL of the
leader (`--lease-ttl 2`) the standby led in 2.1 s and had a newly committed VM running
4.7 s after the kill; a SIGSTOPped leader was replaced in 2.7 s and, woken, went back
to standby with its writes and agent calls refused.

PostgreSQL sessions of a replica are ended by the server when they idle inside a
transaction for longer than the lease TTL (see `with_session_limit`).

A replica started while the store cannot be reached waits for it (one warning), as a
standby waits for the lead.

Exit codes: 0 after a clean stop, 2 when the arguments or the store are unusable.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.engine import make_url

from arbiter import EtcdSettings
from controller.agentpool import AgentPool
from controller.cli.common import (
    DbOption,
    StateDirOption,
    console,
    err_console,
    make_source,
    open_store_or_exit,
)
from controller.cli.etcdopts import (
    EtcdCaOpt,
    EtcdCertOpt,
    EtcdEndpointsOpt,
    EtcdKeyOpt,
    etcd_settings_or_exit,
)
from controller.leader import LeaderElector, lead
from controller.loop import Controller, SourceSetting
from controller.malloc import tune_malloc
from controller.store import Store, StoreError, StoreUnavailable, default_state_dir, open_store

log = logging.getLogger(__name__)

PathArg = Annotated[Path | None, typer.Argument(help="Directory of manifests (polled)")]


def register(app: typer.Typer) -> None:
    """Add the `controller` command to `app`."""
    app.command("controller")(run_controller)


def default_identity() -> str:
    """Return this replica's default identity: host name and process id."""
    return f"{socket.gethostname()}-{os.getpid()}"


def with_session_limit(db: str | None, ttl_s: float) -> str | None:
    """Return `db` with PostgreSQL told to end any session of ours that idles inside a
    transaction for longer than `ttl_s` (other URLs unchanged).

    Every fenced write locks the epoch row for share until it commits; a leader frozen
    in the middle of a write would hold that lock forever and the standby's claim,
    which must lock it for update, would wait forever behind it. Ending the session
    rolls the frozen write back and frees the lock by the time the lease has run out.
    """
    if not db or not make_url(db).get_backend_name().startswith("postgresql"):
        return db
    url = make_url(db)
    limit = f"-c idle_in_transaction_session_timeout={max(1, int(ttl_s * 1000))}"
    options = " ".join(filter(None, (url.query.get("options"), limit)))
    return url.update_query_dict({"options": options}).render_as_string(hide_password=False)


DEFAULT_PARALLEL = 32
"""Agent calls a controller makes at once. More overlaps more agent latency (a VM start
takes about half a second) at a growing CPU cost in thread switching: converging 1,000
simulated VMs took 36 s with 32 and 24 s with 128, for 9.5 s and 17.7 s of CPU."""


def run_controller(
    path: PathArg = None,
    git: Annotated[str | None, typer.Option("--git", help="Git repository URL or path")] = None,
    branch: Annotated[str, typer.Option("--branch", help="Git branch")] = "main",
    subpath: Annotated[str, typer.Option("--path", help="Sub-directory of the repository")] = ".",
    prune: Annotated[
        bool, typer.Option("--prune/--no-prune", help="Delete objects removed from the source")
    ] = False,
    db: DbOption = None,
    state_dir: StateDirOption = None,
    certs: Annotated[
        Path | None, typer.Option("--certs", help="Controller client certs (corral certs)")
    ] = None,
    identity: Annotated[
        str | None, typer.Option("--identity", help="This replica's name [default: host-pid]")
    ] = None,
    lease_ttl: Annotated[
        float, typer.Option("--lease-ttl", help="Seconds the leader's lease lasts unrenewed")
    ] = 10.0,
    resync: Annotated[float, typer.Option(help="Seconds between resync passes")] = 30.0,
    poll: Annotated[float, typer.Option(help="Seconds between checks of the source")] = 1.0,
    parallel: Annotated[
        int, typer.Option("--parallel", min=1, max=1024, help="Agent calls in flight at once")
    ] = DEFAULT_PARALLEL,
    etcd_endpoints: EtcdEndpointsOpt = None,
    etcd_ca: EtcdCaOpt = None,
    etcd_cert: EtcdCertOpt = None,
    etcd_key: EtcdKeyOpt = None,
) -> None:
    """Run one controller replica: reconcile while leading, stand by otherwise."""
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("controller.leader").setLevel(logging.INFO)
    tune_malloc()
    if lease_ttl <= 0:
        err_console.print(f"[red]error:[/] --lease-ttl: expected seconds > 0, got {lease_ttl}")
        raise typer.Exit(2)
    name = identity or default_identity()
    db = with_session_limit(db, lease_ttl)
    setting = replace(make_source(path, git, branch, subpath, prune, state_dir), poll_s=poll)
    etcd = etcd_settings_or_exit(etcd_endpoints, etcd_ca, etcd_cert, etcd_key)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    election_store = wait_for_store(db, state_dir, stop, retry_s=min(lease_ttl / 3, 2.0))
    if election_store is None:
        console.print(f"corral controller {name}: stopped", highlight=False)
        return
    elector = LeaderElector(election_store, name, ttl_s=lease_ttl)
    console.print(
        f"[bold]corral controller[/] {name}: {setting.source.name} -> {election_store.url};"
        f" standing by until it leads (lease {lease_ttl:g}s)",
        highlight=False,
    )
    try:
        term = replica_term(name, setting, db, state_dir, certs, resync, parallel, etcd)
        lead(elector, term, stop)
    finally:
        election_store.close()
    console.print(f"corral controller {name}: stopped", highlight=False)


def _transient(error: StoreError) -> bool:
    return isinstance(error, StoreUnavailable) and error.transient


def wait_for_store(
    db: str | None, state_dir: Path | None, stop: threading.Event, *, retry_s: float
) -> Store | None:
    """Open the store, waiting while it cannot be reached; None if `stop` is set first.

    A replica is a service: started before its database (a host boot, a PostgreSQL
    restart), it stands by for the store as it stands by for the lead. Any other store
    error (an unsupported URL, a state directory that cannot be made, a schema newer
    than this build) still exits 2 at once.
    """
    warned = False
    while not stop.is_set():
        try:
            return open_store_or_exit(db, state_dir, passes=_transient)
        except StoreError as exc:
            if not warned:
                log.warning("waiting for the store: %s", exc)
                warned = True
            stop.wait(retry_s)
    return None


def replica_term(
    name: str,
    setting: SourceSetting,
    db: str | None,
    state_dir: Path | None,
    certs: Path | None,
    resync_s: float,
    parallel: int = DEFAULT_PARALLEL,
    etcd: EtcdSettings | None = None,
) -> Callable[[int], Callable[[threading.Event], None]]:
    """Return a `start` for controller.leader.lead: for each term, a Controller on its own
    store fenced with the term's epoch, whose mutating agent calls carry the same epoch.

    The store is fenced before the Controller is built, so even its first write (the
    source record) is refused if the term is already over. A term that cannot start
    (store down, already deposed) returns a body that ends at once; lead() then stands
    by and claims again.
    """

    def start(epoch: int) -> Callable[[threading.Event], None]:
        try:
            store = open_store(db, state_dir=state_dir or default_state_dir())
        except StoreError as exc:
            log.warning("%s could not start term %d: %s", name, epoch, exc)
            return lambda _term_stop: None
        store.set_fencing_token(epoch)
        pool = AgentPool(cert_dir=certs)
        try:
            controller = Controller(
                store,
                [setting],
                pool,
                identity=name,
                resync_s=resync_s,
                max_parallel=parallel,
                etcd=etcd,
            )
        except StoreError as exc:
            log.warning("%s could not start term %d: %s", name, epoch, exc)
            pool.close()
            store.close()
            return lambda _term_stop: None
        controller.term = epoch
        console.print(f"corral controller {name}: leading in term {epoch}", highlight=False)

        def body(term_stop: threading.Event) -> None:
            try:
                controller.run(term_stop)
            finally:
                pool.close()
                store.close()
                console.print(
                    f"corral controller {name}: term {epoch} over; standing by", highlight=False
                )

        return body

    return start
