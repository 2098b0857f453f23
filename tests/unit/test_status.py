"""build_status: one verdict (and maybe a failed action) -> the object's new status, in full."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from controller.plan.model import ObjectVerdict
from controller.status import ACTION_FAILED, build_status, build_statuses, status_type
from schemas.host import HostStatus
from schemas.meta import Condition, ConditionStatus
from schemas.network import NetworkStatus
from schemas.vm import VirtualMachineStatus, VMPhase

T0 = datetime(2026, 3, 1, 8, 0, 0, tzinfo=UTC)
NOW = T0 + timedelta(seconds=90)
VM = ("VirtualMachine", "web-1")
TRUE, FALSE = ConditionStatus.TRUE, ConditionStatus.FALSE


def cond(type_, status, reason, message, at=NOW, gen=3) -> Condition:
    return Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        observed_generation=gen,
        last_transition_time=at,
    )


def verdict(ready, reason, message, stalled=False, **fields) -> ObjectVerdict:
    return ObjectVerdict(VM, ready, reason, message, stalled, fields)


STARTING = verdict(False, "Starting", "Starting web-1 on a", phase="Starting", host="a")
RUNNING = verdict(True, "Converged", "web-1 runs on a", phase="Running", host="a")
NO_FIT = verdict(
    False, "NoHostFits", "No host has 16Gi free (a: memory, b: maintenance)", stalled=True
)
RECONCILING_BEFORE = VirtualMachineStatus(
    phase=VMPhase.STARTING,
    host="a",
    ips=["10.0.0.5"],
    observed_generation=2,
    conditions=[
        cond("Reconciling", TRUE, "Starting", "Starting web-1 on a", T0, 2),
        cond("Ready", FALSE, "Starting", "Starting web-1 on a", T0, 2),
    ],
)
STALLED_BEFORE = VirtualMachineStatus(
    conditions=[
        cond("Stalled", TRUE, NO_FIT.reason, NO_FIT.message, T0, 2),
        cond("Ready", FALSE, NO_FIT.reason, NO_FIT.message, T0, 2),
    ]
)


@pytest.mark.parametrize(
    ("previous", "given", "failure", "expected"),
    [
        pytest.param(
            None,
            STARTING,
            None,
            VirtualMachineStatus(
                phase=VMPhase.STARTING,
                host="a",
                conditions=[
                    cond("Reconciling", TRUE, "Starting", "Starting web-1 on a"),
                    cond("Ready", FALSE, "Starting", "Starting web-1 on a"),
                ],
            ),
            id="first-status-reconciling",
        ),
        pytest.param(
            RECONCILING_BEFORE,
            RUNNING,
            None,
            VirtualMachineStatus(
                phase=VMPhase.RUNNING,
                host="a",
                ips=["10.0.0.5"],
                conditions=[cond("Ready", TRUE, "Converged", "web-1 runs on a")],
            ),
            id="ready-drops-reconciling-keeps-ips",
        ),
        pytest.param(
            RECONCILING_BEFORE,
            STARTING,
            None,
            VirtualMachineStatus(
                phase=VMPhase.STARTING,
                host="a",
                ips=["10.0.0.5"],
                conditions=[
                    cond("Reconciling", TRUE, "Starting", "Starting web-1 on a", T0),
                    cond("Ready", FALSE, "Starting", "Starting web-1 on a", T0),
                ],
            ),
            id="same-verdict-keeps-times",
        ),
        pytest.param(
            RECONCILING_BEFORE,
            NO_FIT,
            None,
            VirtualMachineStatus(
                phase=VMPhase.STARTING,
                host="a",
                ips=["10.0.0.5"],
                conditions=[
                    cond("Stalled", TRUE, NO_FIT.reason, NO_FIT.message),
                    cond("Ready", FALSE, NO_FIT.reason, NO_FIT.message),
                ],
            ),
            id="stalled-replaces-reconciling",
        ),
        pytest.param(
            STALLED_BEFORE,
            STARTING,
            "a: DefineVM failed: libvirt: cannot access kernel",
            VirtualMachineStatus(
                phase=VMPhase.STARTING,
                host="a",
                conditions=[
                    cond("Reconciling", TRUE, "Starting", "Starting web-1 on a"),
                    cond(
                        "Ready",
                        FALSE,
                        ACTION_FAILED,
                        "a: DefineVM failed: libvirt: cannot access kernel",
                    ),
                ],
            ),
            id="failure-reconciling-not-stalled",
        ),
        pytest.param(
            STALLED_BEFORE,
            RUNNING,
            None,
            VirtualMachineStatus(
                phase=VMPhase.RUNNING,
                host="a",
                conditions=[cond("Ready", TRUE, "Converged", "web-1 runs on a")],
            ),
            id="ready-ends-stalled",
        ),
        pytest.param(
            None,
            verdict(True, "Converged", "ok", phase="Running", notAField="x", cpu=4),
            None,
            VirtualMachineStatus(
                phase=VMPhase.RUNNING, conditions=[cond("Ready", TRUE, "Converged", "ok")]
            ),
            id="unknown-fields-ignored",
        ),
    ],
)
def test_build_status(previous, given, failure, expected):
    got = build_status(
        "VirtualMachine", previous, given, generation=3, revision="abc123", failure=failure, now=NOW
    )
    want = expected.model_copy(update={"observed_generation": 3, "source_revision": "abc123"})
    assert got == want


def test_status_type_per_kind():
    assert status_type("VirtualMachine") is VirtualMachineStatus
    assert status_type("Host") is HostStatus
    assert status_type("Network") is NetworkStatus


def test_build_statuses_covers_known_kinds_only():
    net = ("Network", "lan")
    got = build_statuses(
        {
            VM: RUNNING,
            net: ObjectVerdict(net, True, "Converged", "lan is active on 1 host(s)"),
            ("Source", "origin"): ObjectVerdict(("Source", "origin"), True, "Converged", "x"),
        },
        previous={},
        generations={VM: 4, net: 1},
        revisions={VM: "r2", net: "r1"},
        failures={},
        now=NOW,
    )
    assert set(got) == {VM, net}
    assert got[net] == NetworkStatus(
        observed_generation=1,
        source_revision="r1",
        conditions=[cond("Ready", TRUE, "Converged", "lan is active on 1 host(s)", gen=1)],
    )
    assert (got[VM].observed_generation, got[VM].source_revision) == (4, "r2")


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"restartRequired": ["memory_mib"], "ips": ["10.0.0.5"]}, id="aliases"),
        pytest.param({"restart_required": ["memory_mib"], "ips": ["10.0.0.5"]}, id="names"),
    ],
)
def test_verdict_fields_by_name_or_alias(fields):
    verdict = ObjectVerdict(VM, True, "RestartRequired", "waits for a restart", fields=fields)
    got = build_status(
        "VirtualMachine", None, verdict, generation=1, revision=None, failure=None, now=NOW
    )
    assert (got.restart_required, got.ips) == (["memory_mib"], ["10.0.0.5"])
