"""The HA arbiter: etcd, reached through its v3 JSON gateway.

Agents keep their own fencing leases alive here; the controller only watches them.
This package imports nothing of Corral's, so the agent and the controller both use it.
"""

from arbiter.client import (
    EtcdClient,
    EtcdError,
    EtcdRequestError,
    EtcdUnavailable,
    KeyValue,
    WatchEvent,
    probe,
)
from arbiter.hostkeys import HostLeaseRecord, host_key, host_of_key, hosts_prefix
from arbiter.settings import EtcdSettingError, EtcdSettings, make_settings, parse_endpoints

__all__ = [
    "EtcdClient",
    "EtcdError",
    "EtcdRequestError",
    "EtcdSettingError",
    "EtcdSettings",
    "EtcdUnavailable",
    "HostLeaseRecord",
    "KeyValue",
    "WatchEvent",
    "host_key",
    "host_of_key",
    "hosts_prefix",
    "make_settings",
    "parse_endpoints",
    "probe",
]
