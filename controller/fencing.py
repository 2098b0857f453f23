"""Power fencing: switch a failed host off, confirmed, before its HA VMs restart elsewhere.

The methods follow the fence agents oVirt and Pacemaker use: IPMI through
`ipmitool`, Redfish through its ComputerSystem.Reset action, or any fence-agent
command (exit status 0 means the host is off). Every method confirms "off" before
it returns: an unconfirmed fence is a failed fence, and a failed fence blocks the
restart (never two copies).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx

from schemas.host import FenceMethod, Fencing

CONFIRM_TIMEOUT_S = 60.0
POLL_S = 2.0


class FenceError(Exception):
    """The host could not be fenced, or "off" could not be confirmed; `retryable` says retry."""

    retryable = True

    def __init__(self, host: str, message: str) -> None:
        super().__init__(f"fencing {host} failed: {message}")
        self.host = host


def fence_host(host: str, fencing: Fencing, *, timeout_s: float = CONFIRM_TIMEOUT_S) -> bool:
    """Switch `host` off by its fencing method and return True once "off" is confirmed.

    Raises FenceError when the method fails or does not confirm within `timeout_s`;
    raises it (not retryable) for the lease method, which has nothing to switch.
    """
    if fencing.method is FenceMethod.LEASE:
        error = FenceError(host, "its fencing method is lease: it fences itself")
        error.retryable = False
        raise error
    if fencing.method is FenceMethod.COMMAND:
        _run(host, fencing.command, timeout_s)
        return True
    if fencing.method is FenceMethod.IPMI:
        return _fence_ipmi(host, fencing, timeout_s)
    return _fence_redfish(host, fencing, timeout_s)


def _password(fencing: Fencing) -> str:
    if not fencing.password_file:
        return ""
    return Path(fencing.password_file).read_text().strip()


def _run(host: str, argv: list[str], timeout_s: float) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FenceError(host, f"{argv[0]}: {exc}") from exc
    if done.returncode != 0:
        raise FenceError(host, f"{argv[0]} exited {done.returncode}: {done.stderr.strip()[:300]}")
    return done.stdout


def _fence_ipmi(host: str, fencing: Fencing, timeout_s: float) -> bool:
    base = ["ipmitool", "-I", "lanplus", "-H", fencing.address or "", "-U", fencing.username or ""]
    if fencing.password_file:
        base += ["-f", fencing.password_file]
    _run(host, [*base, "chassis", "power", "off"], timeout_s)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if "off" in _run(host, [*base, "chassis", "power", "status"], timeout_s).lower():
            return True
        time.sleep(POLL_S)
    raise FenceError(host, f"power status not off within {timeout_s:.0f}s")


def _fence_redfish(host: str, fencing: Fencing, timeout_s: float) -> bool:
    base = (fencing.address or "").rstrip("/")
    system = f"{base}/redfish/v1/Systems/1"
    auth = (fencing.username or "", _password(fencing))
    try:
        with httpx.Client(auth=auth, timeout=10.0) as http:
            http.post(
                f"{system}/Actions/ComputerSystem.Reset", json={"ResetType": "ForceOff"}
            ).raise_for_status()
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                if http.get(system).json().get("PowerState") == "Off":
                    return True
                time.sleep(POLL_S)
    except (httpx.HTTPError, ValueError) as exc:
        raise FenceError(host, f"redfish: {exc}") from exc
    raise FenceError(host, f"PowerState not Off within {timeout_s:.0f}s")
