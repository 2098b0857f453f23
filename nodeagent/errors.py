"""The agent's one exception type, and the mapping of libvirt errors onto it.

Every verb raises `AgentFailure`; the server turns it into an `AgentError` JSON
body. No raw libvirt exception crosses the HTTP boundary.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import libvirt

from agentapi import AgentError, ErrorType

HTTP_STATUS: dict[str, int] = {
    "not_found": 404,
    "conflict": 409,
    "invalid_spec": 422,
    "hook_failed": 424,
    "unauthorized": 403,
    "unavailable": 503,
    "libvirt_error": 502,
}

_NOT_FOUND_CODES = {
    libvirt.VIR_ERR_NO_DOMAIN,
    libvirt.VIR_ERR_NO_NETWORK,
    libvirt.VIR_ERR_NO_STORAGE_POOL,
    libvirt.VIR_ERR_NO_STORAGE_VOL,
    libvirt.VIR_ERR_NO_DOMAIN_SNAPSHOT,
}
# The connection to libvirtd is gone or stuck: the same call may work after a reconnect.
_UNAVAILABLE_CODES = {
    libvirt.VIR_ERR_RPC,
    libvirt.VIR_ERR_NO_CONNECT,
    libvirt.VIR_ERR_INVALID_CONN,
    libvirt.VIR_ERR_AUTH_FAILED,
}
_RETRYABLE_CODES = {libvirt.VIR_ERR_OPERATION_TIMEOUT, libvirt.VIR_ERR_AGENT_UNRESPONSIVE}


class AgentFailure(Exception):
    """A verb failed; carries the typed error the HTTP layer returns."""

    def __init__(
        self,
        type: ErrorType,
        message: str,
        *,
        retryable: bool = False,
        libvirt_code: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.error = AgentError(
            type=type,
            message=message,
            retryable=retryable,
            libvirt_code=libvirt_code,
            field=field,
        )

    @property
    def status_code(self) -> int:
        """Return the HTTP status for this error type."""
        return HTTP_STATUS[self.error.type]


def not_found(kind: str, name: str) -> AgentFailure:
    """Return the failure for a verb on a missing object."""
    return AgentFailure("not_found", f"{kind} {name!r} not found on this host")


def conflict(message: str, *, retryable: bool = False) -> AgentFailure:
    """Return the failure for a verb that the object's current state forbids."""
    return AgentFailure("conflict", message, retryable=retryable)


def invalid_spec(field: str, message: str) -> AgentFailure:
    """Return the failure for a request that names a bad value in `field`."""
    return AgentFailure("invalid_spec", f"{field}: {message}", field=field)


def from_libvirt(exc: libvirt.libvirtError, context: str = "") -> AgentFailure:
    """Return the AgentFailure for a libvirt error, keeping libvirt's code and message."""
    code = exc.get_error_code()
    message = f"{context}: {exc.get_error_message()}" if context else str(exc.get_error_message())
    if code in _NOT_FOUND_CODES:
        return AgentFailure("not_found", message, libvirt_code=code)
    if code in _UNAVAILABLE_CODES:
        return AgentFailure("unavailable", message, retryable=True, libvirt_code=code)
    if code == libvirt.VIR_ERR_OPERATION_INVALID:
        return AgentFailure("conflict", message, retryable=True, libvirt_code=code)
    return AgentFailure(
        "libvirt_error", message, retryable=code in _RETRYABLE_CODES, libvirt_code=code
    )


@contextmanager
def libvirt_errors(context: str = "") -> Iterator[None]:
    """Re-raise any libvirt error inside the block as an AgentFailure."""
    try:
        yield
    except libvirt.libvirtError as exc:
        raise from_libvirt(exc, context) from exc
