"""What a test does when a service or tool it needs is absent: it fails, naming the service
and the command that provides it. It skips only when the run opted out of that service
explicitly, by naming it in CORRAL_TEST_WITHOUT (comma-separated, see the README); the
session's summary lists every opt-out that took effect.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections import Counter

import pytest

OPT_OUT_ENV = "CORRAL_TEST_WITHOUT"

SERVICES: dict[str, str] = {
    "postgres": "make setup (scripts/setup-postgres.sh)",
    "libvirt": "make setup (scripts/setup-host.sh)",
    "netns": "a root shell with iproute2 (ip netns add)",
    "browser": "make setup (scripts/setup-browser.sh, pip install -e '.[test]')",
    "etcd": "make setup (scripts/setup-etcd.sh)",
    "kube": "make setup (scripts/setup-kube.sh)",
    "tools": "make setup",
}
"""Each service a test may need, with the command that provides it."""

opted_out_uses: Counter[str] = Counter()
"""How many tests each opt-out skipped this session (read by the summary hook)."""


def opted_out() -> set[str]:
    """Return the services this run opted out of (CORRAL_TEST_WITHOUT)."""
    raw = os.environ.get(OPT_OUT_ENV, "")
    return {name.strip() for name in raw.split(",") if name.strip()}


def require(service: str, problem: str | None) -> None:
    """Return when `problem` is None; otherwise fail the test (or skip it, if opted out).

    `service` is a key of SERVICES; `problem` says what is missing.
    """
    if problem is None:
        return
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}; known: {', '.join(SERVICES)}")
    if service in opted_out():
        opted_out_uses[service] += 1
        pytest.skip(f"{service} opted out by {OPT_OUT_ENV}: {problem}", allow_module_level=True)
    pytest.fail(
        f"{service} is needed and missing: {problem}. {SERVICES[service]} provides it "
        f"(or set {OPT_OUT_ENV}={service} to skip, reported in the summary)",
        pytrace=False,
    )


def require_module(service: str, module: str) -> None:
    """Require that Python module `module` can be imported."""
    problem = None
    if importlib.util.find_spec(module) is None:
        problem = f"Python module {module!r} is not installed"
    require(service, problem)


def require_program(service: str, program: str) -> None:
    """Require that `program` (a name on PATH or an absolute path) exists."""
    problem = None if shutil.which(program) else f"{program} not found"
    require(service, problem)


CHROMIUM = "/usr/bin/chromium"
"""Debian's chromium: Playwright drives it and never downloads a browser of its own."""


def playwright_sync():
    """Return playwright.sync_api after requiring it and Debian's chromium (service browser)."""
    require_module("browser", "playwright")
    require_program("browser", CHROMIUM)
    import playwright.sync_api

    return playwright.sync_api
