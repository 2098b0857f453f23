"""Fixtures shared by all test suites: the real libvirt host, the tiny guest, the lab."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from controller.lab.guest import GuestImage, ensure_tiny_guest
from controller.lab.libvirtd import Lab, ensure_system_libvirtd
from tests.helpers.prereq import host_skip_reason

TEST_LAB_NAME = "test"
TEST_LAB_SUBNET = "10.77.99.0/24"
"""Apart from the default `corral lab` (10.77.0.0/24), so tests never touch a user's lab."""
TEST_LAB_HOSTS = 3


@pytest.fixture(scope="session")
def system_libvirt() -> str:
    """Returns qemu:///system after making sure the machine's libvirtd answers there."""
    reason = host_skip_reason()
    if reason:
        pytest.skip(reason)
    return ensure_system_libvirtd()


@pytest.fixture(scope="session")
def tiny_guest() -> GuestImage:
    """Returns the cached tiny guest (kernel, initrd), building it on first use."""
    reason = host_skip_reason()
    if reason:
        pytest.skip(reason)
    return ensure_tiny_guest()


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """Yields a lab of 3 namespaced libvirt hosts; removed at session end, also on failure."""
    reason = host_skip_reason()
    if reason:
        pytest.skip(reason)
    test_lab = Lab(TEST_LAB_NAME, TEST_LAB_SUBNET)
    test_lab.down()  # whatever a crashed earlier run left
    try:
        test_lab.up(TEST_LAB_HOSTS)
        yield test_lab
    finally:
        test_lab.down()
