"""Fixtures shared by all test suites: the real libvirt host, the tiny guest, the lab."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from controller.lab.guest import GuestImage, ensure_tiny_guest
from controller.lab.libvirtd import Lab, ensure_system_libvirtd
from tests.helpers.prereq import host_skip_reason
from tests.helpers.services import opted_out_uses, require

pytest_plugins = ["tests.helpers.etcd"]

TEST_LAB_NAME = "test"
TEST_LAB_SUBNET = "10.77.99.0/24"
"""Apart from the default `corral lab` (10.77.0.0/24), so tests never touch a user's lab."""
TEST_LAB_HOSTS = 3


@pytest.fixture(scope="session")
def system_libvirt() -> str:
    """Returns qemu:///system after making sure the machine's libvirtd answers there."""
    require("libvirt", host_skip_reason())
    return ensure_system_libvirtd()


@pytest.fixture(scope="session")
def tiny_guest() -> GuestImage:
    """Returns the cached tiny guest (kernel, initrd), building it on first use."""
    require("libvirt", host_skip_reason())
    return ensure_tiny_guest()


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """Yields a lab of 3 namespaced libvirt hosts; removed at session end, also on failure."""
    require("libvirt", host_skip_reason())
    test_lab = Lab(TEST_LAB_NAME, TEST_LAB_SUBNET)
    test_lab.down()  # whatever a crashed earlier run left
    try:
        test_lab.up(TEST_LAB_HOSTS)
        yield test_lab
    finally:
        test_lab.down()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Report each service this run opted out of, and how many tests it skipped."""
    if opted_out_uses:
        terminalreporter.section("services opted out (CORRAL_TEST_WITHOUT)")
        for service, count in sorted(opted_out_uses.items()):
            terminalreporter.write_line(f"{service}: {count} tests skipped")
