"""Bad etcd and lease settings stop `corral agent` and `corral controller` at start, naming
the option, before any VM is touched."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.e2ekit import REPO_ROOT


def corral(*args: str, timeout_s: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "controller.cli.main", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


AGENT = ("agent", "--libvirt-uri", "test:///default", "--insecure-dev", "--listen")


@pytest.mark.parametrize(
    ("extra", "option", "says"),
    [
        pytest.param(["--lease-ttl", "4"], "--lease-ttl",
                     "an etcd leader change (2.5 s)", id="ttl-below-a-leader-change"),
        pytest.param(["--lease-ttl", "1"], "--lease-ttl", "at least 2", id="ttl-too-short"),
        pytest.param(["--etcd-endpoints", "127.0.0.1:2379"], "--etcd-endpoints",
                     "is not an etcd client URL", id="endpoint-without-scheme"),
        pytest.param(["--etcd-endpoints", "http://127.0.0.1:9"], "--etcd-endpoints",
                     "unreachable", id="unreachable-endpoint"),
        pytest.param(["--etcd-endpoints", "https://127.0.0.1:9"], "--etcd-ca",
                     "https endpoints need", id="https-without-certificates"),
    ],
)  # fmt: skip
def test_a_bad_agent_setting_exits_2_naming_it(extra, option, says, tmp_path: Path):
    result = corral(*AGENT, "127.0.0.1:0", "--lease-file", str(tmp_path / "lease.json"), *extra)
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"corral agent: {option}"), line
    assert says in line


def test_wrong_etcd_certificates_stop_the_controller_naming_them(etcd_tls, tmp_path: Path):
    from nodeagent.tls import make_ca, make_controller_cert

    make_ca(tmp_path / "other", "not the etcd CA")
    make_controller_cert(tmp_path / "other")
    tls = etcd_tls.client_tls
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    result = corral(
        "controller", str(manifests), "--state-dir", str(tmp_path / "state"),
        "--etcd-endpoints", ",".join(etcd_tls.endpoints), "--etcd-ca", str(tls.ca),
        "--etcd-cert", str(tmp_path / "other" / "controller" / "client.crt"),
        "--etcd-key", str(tmp_path / "other" / "controller" / "client.key"),
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert "--etcd-ca, --etcd-cert, --etcd-key: etcd refused the TLS handshake" in (
        result.stderr.replace("\n", " ")
    )


def test_an_agent_that_held_an_etcd_lease_in_this_boot_will_not_start_without_etcd(tmp_path):
    import json

    from nodeagent.lease import boot_id

    lease = tmp_path / "lease.json"
    lease.write_text(json.dumps({"boot_id": boot_id(), "lease_id": 5, "acked_sent_at": 1.0}))
    result = corral(*AGENT, "127.0.0.1:0", "--lease-file", str(lease))
    assert result.returncode == 2, result.stderr
    assert "corral agent: --etcd-endpoints: this host held an etcd lease in this boot" in (
        result.stderr
    )
