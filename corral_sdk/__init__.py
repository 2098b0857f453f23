"""Corral's Python SDK: typed sync and async clients of the REST API, using the schema models.

from corral_sdk import Client
with Client("https://corral:8480", token, ca="ca.crt") as client:
    client.vms.create(vm)
    client.vms.wait("web-1", "Ready")
"""

from corral_sdk.aio import AsyncClient, AsyncResources
from corral_sdk.client import Client, Resources
from corral_sdk.core import ROUTES, WatchEvent
from corral_sdk.errors import (
    ApiError,
    Conflict,
    CorralError,
    Forbidden,
    Invalid,
    NotFound,
    OwnedBySource,
    Unauthorized,
    WaitTimeout,
)

__all__ = [
    "ROUTES",
    "ApiError",
    "AsyncClient",
    "AsyncResources",
    "Client",
    "Conflict",
    "CorralError",
    "Forbidden",
    "Invalid",
    "NotFound",
    "OwnedBySource",
    "Resources",
    "Unauthorized",
    "WaitTimeout",
    "WatchEvent",
]
