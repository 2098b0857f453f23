"""Why a real-libvirt test cannot run here, or None if it can."""

from __future__ import annotations

import importlib.util
import os

from controller.lab.libvirtd import missing_host_tools


def host_skip_reason() -> str | None:
    """Returns a reason to skip tests needing a real libvirtd and QEMU, or None.

    Only a missing privilege or missing packages justify a skip; a libvirtd that fails to
    start with everything installed is an error, not a skip.
    """
    if os.geteuid() != 0:
        return "needs root (libvirtd runs QEMU as root; the lab makes namespaces)"
    missing = missing_host_tools()
    if missing:
        return f"missing {', '.join(missing)} (run scripts/setup-host.sh)"
    if importlib.util.find_spec("libvirt") is None:
        return "libvirt-python is not installed (pip install libvirt-python)"
    return None
