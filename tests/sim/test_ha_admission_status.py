"""HA admission as operators read it: `corral status`, the dashboard, the Host status in the
API, and `corral plan --what-if`.

The real Controller converges a simulated fleet of three 4Gi hosts into a SQLite store in a
state directory; the commands run through the real CLI (typer's runner) on that store. Eight
HA VMs of 1Gi survive the loss of any one host; a ninth would not. `corral plan` reads the
hosts through the simulated transport (the agents' edge), as the controller does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from arbiter import make_settings
from controller.agentpool import AgentPool
from controller.api import TokenStore, create_app
from controller.cli.main import app
from controller.dashboard.session import COOKIE
from controller.loop import Controller, SourceSetting
from controller.sim import INSTANT, SimFleet, write_fleet
from controller.sources import DirectorySource
from controller.store import open_store

runner = CliRunner()
LINE = "HA admission: "
TOLERATED = "HA admission: tolerates the loss of any one host (3 hosts up)"


def write_vms(root: Path, count: int) -> None:
    """Write `count` HA VMs (the fleet's template: 1 CPU, 1Gi), priority 10 x their number."""
    docs = [
        "apiVersion: corral.dev/v1alpha1\nkind: VirtualMachine\n"
        f"metadata:\n  name: ha-{i}\nspec:\n  template: small\n"
        f"  ha:\n    enabled: true\n    priority: {10 * i}\n"
        for i in range(count)
    ]
    (root / "vms.yaml").write_text("---\n".join(docs))


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, etcd) -> Iterator[SimpleNamespace]:
    manifests = tmp_path / "manifests"
    names = write_fleet(manifests, vms=0, hosts=3)
    sim = SimFleet(names, latency=INSTANT, memory_mib=4096)
    state = tmp_path / "state"
    state.mkdir()
    store = open_store(None, state_dir=state)
    controller = Controller(
        store,
        [SourceSetting(DirectorySource(manifests, name="dir:fleet"), "dir", "fleet", prune=True)],
        AgentPool(transport_for=sim.transport_for),
        busy_requeue_s=0.0,
        # An arbiter, so that a lost host's HA VMs could restart elsewhere (simulated hosts
        # keep no lease: each would count as gone, which the admission check never waits on).
        etcd=make_settings(etcd.endpoints),
    )
    # `corral plan` builds its own pool: route it to the simulated agents too.
    monkeypatch.setattr(
        "controller.cli.up.AgentPool", lambda **_: AgentPool(transport_for=sim.transport_for)
    )

    def converge(count: int) -> None:
        write_vms(manifests, count)
        for _ in range(12):
            if controller.reconcile().converged:
                return
        raise AssertionError("not converged")

    yield SimpleNamespace(
        names=names,
        store=store,
        state=state,
        manifests=manifests,
        converge=converge,
        sim=sim,
        etcd=",".join(etcd.endpoints),
    )
    store.close()


def cli(setup: SimpleNamespace, *args: str):
    etcd = ["--etcd-endpoints", setup.etcd] if args[0] == "plan" else []
    return runner.invoke(app, [*args, "--state-dir", str(setup.state), *etcd])


def admission_lines(output: str) -> list[str]:
    return [line.strip() for line in output.splitlines() if line.strip().startswith(LINE)]


def test_status_says_the_fleet_tolerates_a_loss_then_which_loss_it_would_not(setup) -> None:
    setup.converge(8)
    result = cli(setup, "status")
    assert result.exit_code == 0, result.output
    assert admission_lines(result.output) == [TOLERATED]

    setup.converge(9)
    result = cli(setup, "status")
    assert result.exit_code == 0, result.output
    [line] = admission_lines(result.output)
    worst = setup.store.get("Host", "h0000").obj.status.ha_admission
    assert (worst.tolerated, worst.restarts, len(worst.stranded)) == (False, 2, 1)
    assert line == (
        f"HA admission: losing h0000 would leave {worst.stranded[0]} without a host; "
        f"{worst.stranded[0]}: No host has 1 CPU and 1Gi memory free with network lan with pool "
        "shared (3 hosts filtered: h0000 lost, h0001 memory full, h0002 memory full); losing 2 "
        "other hosts would strand HA VMs too"
    )


def test_plan_prints_the_verdict_of_the_placements_it_leaves(setup) -> None:
    setup.converge(9)
    result = cli(setup, "plan", str(setup.manifests))
    assert result.exit_code == 0, result.output
    assert "No changes." in result.output
    [line] = admission_lines(result.output)
    assert line.startswith("HA admission: losing h0000 would leave ")


def test_without_etcd_the_verdict_says_ha_restarts_are_off(setup) -> None:
    setup.converge(2)
    result = runner.invoke(app, ["plan", str(setup.manifests), "--state-dir", str(setup.state)])
    assert result.exit_code == 0, result.output
    [line] = admission_lines(result.output)
    assert line.startswith("HA admission: losing ")
    assert "HA restarts from" in line and "no etcd" in line and "(NoArbiter)" in line


def test_what_if_prints_restarts_and_those_that_could_not(setup) -> None:
    setup.converge(9)
    on_host = {h: sorted(d.name for d in setup.sim.hosts[h].domains.values()) for h in setup.names}
    result = cli(setup, "plan", str(setup.manifests), "--what-if", "h0001=down")
    assert result.exit_code == 0, result.output
    lines = [line.rstrip() for line in result.output.splitlines()]
    assert lines[0] == "What if h0001 went down:"
    restarts = [line for line in lines if " -> " in line]
    stranded = [line for line in lines if "(from h0001): NoHostForRestart" in line]
    # Highest priority first: the lowest-numbered VM of h0001 is the one left out.
    mine = sorted(on_host["h0001"], key=lambda n: -int(n.split("-")[1]))
    assert [line.split()[0] for line in restarts] == mine[:-1]
    assert all(line.split()[2] in ("h0000", "h0002") for line in restarts)
    assert [line.split()[0] for line in stranded] == [mine[-1]]
    assert "No host has 1 CPU and 1Gi memory free" in stranded[0]
    assert lines[-1] == f"{len(mine) - 1} HA VMs would restart, 1 would find no host."


def test_what_if_two_hosts_as_json(setup) -> None:
    setup.converge(8)
    survivor_free = 4 - len(setup.sim.hosts["h0001"].domains)  # GiB, for VMs of 1Gi
    lost_hosts = [setup.sim.hosts[h].domains for h in ("h0000", "h0002")]
    result = cli(
        setup, "plan", str(setup.manifests), "--what-if", "h0000=down,h0002=down", "-o", "json"
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["hostsDown"] == ["h0000", "h0002"]
    assert [r["to"] for r in doc["restarts"]] == ["h0001"] * survivor_free
    assert len(doc["stranded"]) == sum(map(len, lost_hosts)) - survivor_free
    assert doc["tolerated"] is False and doc["lost"] == []
    assert doc["stranded"][0]["reason"] == "NoHostForRestart"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("nosuchhost=down", "--what-if 'nosuchhost=down': no Host named nosuchhost (hosts: "
         "h0000, h0001, h0002)"),
        ("h0001=up", "--what-if 'h0001=up': a host can only be assumed down (HOST=down), got "
         "'up'"),
        ("h0001", "--what-if 'h0001': expected HOST=down, e.g. host-2=down"),
    ],
    ids=["unknown-host", "not-down", "no-state"],
)  # fmt: skip
def test_what_if_bad_input_names_the_option_and_the_value(setup, value: str, message: str):
    setup.converge(3)
    result = cli(setup, "plan", str(setup.manifests), "--what-if", value)
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {message}"


def test_dashboard_and_api_show_the_same_verdict(setup) -> None:
    setup.converge(8)
    url = f"sqlite:///{setup.state / 'corral.db'}"
    tokens = TokenStore.open(url)
    try:
        with TestClient(create_app(setup.store, tokens)) as client:
            token = tokens.create("ann", "viewer")
            client.cookies.set(COOKIE, token, path="/ui")
            page = client.get("/ui/")
            assert page.status_code == 200
            assert f'<p id="ha-admission" class="ok">{TOLERATED}</p>' in page.text
            status = client.get(
                "/api/v1/hosts/h0002/status", headers={"Authorization": f"Bearer {token}"}
            ).json()
            assert status["haAdmission"]["tolerated"] is True
            assert status["haAdmission"]["message"].startswith("Losing h0002 would restart")
    finally:
        tokens.close()
