"""`corral lab up` leaves a lab that outlives the command; `down` removes all of it, even when
the state file is lost; `up` is idempotent and repairs a host whose libvirtd died."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from controller.lab import hostconf, netns
from controller.lab.libvirtd import Lab, libvirt_answers

pytestmark = [pytest.mark.libvirtd, pytest.mark.lab]

NAME, SUBNET = "crash", "10.77.97.0/24"
REPO_ROOT = Path(__file__).resolve().parents[2]


def corral(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controller.cli.main", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def lab_traces(lab: Lab) -> dict[str, list]:
    """Returns what the lab left on the machine, by kind."""
    return {
        "netns": netns.list_netns(hostconf.netns_prefix(NAME)),
        "links": netns.list_links(hostconf.veth_prefix(NAME)),
        "dirs": [lab.root] if lab.root.exists() else [],
        "state": [lab.state_file] if lab.state_file.exists() else [],
    }


def test_cli_lab_survives_its_command_and_down_cleans_without_state() -> None:
    lab = Lab(NAME, SUBNET)
    lab.down()
    try:
        up = corral("lab", "up", "--hosts", "2", "--name", NAME, "--subnet", SUBNET)
        assert up.returncode == 0, up.stderr
        assert [line.split("\t")[0] for line in up.stdout.splitlines()] == ["host-1", "host-2"]
        hosts = lab.hosts  # read back from the state file by another process
        assert all(libvirt_answers(h.uri) for h in hosts)
        pids = [pid for h in hosts for pid in netns.netns_pids(h.plan.netns)]
        assert len(pids) == 8  # an anchor, a libvirtd, an etcd member and a Corral agent per host

        lab.state_file.unlink()  # as if the state were lost with a crash or a reboot of /run
        down = corral("lab", "down", "--name", NAME, "--subnet", SUBNET)
        assert down.returncode == 0, down.stderr
        assert lab_traces(lab) == {"netns": [], "links": [], "dirs": [], "state": []}
        assert [pid for pid in pids if netns.process_name(pid) is not None] == []
    finally:
        lab.down()


def test_up_is_idempotent_and_repairs_a_dead_libvirtd() -> None:
    lab = Lab(NAME, SUBNET)
    lab.down()
    try:
        [first] = lab.up(1)
        [again] = lab.up(1)
        assert again == first  # same namespaces, nothing rebuilt
        lab.kill_host(first.name)
        assert not libvirt_answers(first.uri, timeout_s=2)
        [repaired] = lab.up(1)
        assert repaired.anchor_pid == first.anchor_pid
        assert libvirt_answers(repaired.uri)
    finally:
        lab.down()
    assert lab_traces(lab) == {"netns": [], "links": [], "dirs": [], "state": []}


def test_bad_lab_arguments_are_refused_by_name() -> None:
    result = corral("lab", "up", "--hosts", "2", "--name", "Bad_Name")
    assert result.returncode == 1
    assert "name: expected 1-6 of [a-z0-9], got 'Bad_Name'" in result.stderr
