"""The etcd options of every command that runs a controller, declared once.

`--etcd-endpoints` (or CORRAL_ETCD_ENDPOINTS) names the etcd cluster in which the hosts'
agents keep their fencing leases; with it come `--etcd-ca`, `--etcd-cert` and
`--etcd-key` (CORRAL_ETCD_CA/CERT/KEY). Without endpoints the controller has no arbiter:
HA restarts elsewhere are off, and the status says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from arbiter import EtcdSettingError, EtcdSettings, make_settings, probe
from controller.cli.common import err_console

EtcdEndpointsOpt = Annotated[
    str | None,
    typer.Option(
        "--etcd-endpoints",
        envvar="CORRAL_ETCD_ENDPOINTS",
        help="etcd client URLs holding the hosts' fencing leases (none: no HA restarts)",
    ),
]
EtcdCaOpt = Annotated[
    Path | None, typer.Option("--etcd-ca", envvar="CORRAL_ETCD_CA", help="CA of the etcd cluster")
]
EtcdCertOpt = Annotated[
    Path | None,
    typer.Option("--etcd-cert", envvar="CORRAL_ETCD_CERT", help="etcd client certificate"),
]
EtcdKeyOpt = Annotated[
    Path | None, typer.Option("--etcd-key", envvar="CORRAL_ETCD_KEY", help="etcd client key")
]

OPTION_NAMES = {
    "endpoints": "--etcd-endpoints",
    "ca_file": "--etcd-ca",
    "cert_file": "--etcd-cert",
    "key_file": "--etcd-key",
}


def etcd_settings_or_exit(
    endpoints: str | None,
    ca: Path | None,
    cert: Path | None,
    key: Path | None,
    *,
    check: bool = True,
) -> EtcdSettings | None:
    """Return the checked etcd settings (None without endpoints); exit 2 naming the bad
    option. With `check`, etcd must answer a read now (wrong certificates show here)."""
    try:
        if not endpoints:
            if ca or cert or key:
                raise EtcdSettingError("--etcd-endpoints", "etcd TLS files given without it")
            return None
        settings = make_settings(
            endpoints, ca_file=ca, cert_file=cert, key_file=key, names=OPTION_NAMES
        )
        if check:
            probe(settings)
        return settings
    except EtcdSettingError as exc:
        err_console.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
