"""Corral's own store errors; SQLAlchemy and driver exceptions become these at the boundary."""

from __future__ import annotations


class StoreError(Exception):
    """Base of every store error."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or opened; `url` has its password redacted.

    `transient` is False when waiting cannot help (an unsupported database, a state
    directory that cannot be made); a service may wait out the others.
    """

    def __init__(self, url: str, cause: str, *, transient: bool = True) -> None:
        self.url = url
        self.cause = cause
        self.transient = transient
        super().__init__(f"database unavailable at {url}: {cause}")


class StoreBusy(StoreError):
    """The database was locked or rolled the transaction back (deadlock, serialization); retry."""


class NotFound(StoreError):
    """No such object (or host, plan, source) in the store."""

    def __init__(self, kind: str, name: str) -> None:
        self.kind = kind
        self.name = name
        super().__init__(f"{kind}/{name} not found")


class Conflict(StoreError):
    """Optimistic concurrency failed: the stored resource version is not the expected one.

    `actual` is None when the object does not exist (or was created concurrently and its
    version is unknown); `expected` 0 means "must not exist yet".
    """

    def __init__(self, kind: str, name: str, expected: int, actual: int | None) -> None:
        self.kind = kind
        self.name = name
        self.expected = expected
        self.actual = actual
        found = "it does not exist" if actual is None else f"found {actual}"
        if expected == 0 and actual is not None:
            found = f"it already exists at version {actual}"
        super().__init__(f"{kind}/{name}: expected resource version {expected}, {found}")


class OwnedElsewhere(StoreError):
    """The object belongs to another source; writing it would fight that source."""

    def __init__(self, kind: str, name: str, owner: str, source: str) -> None:
        self.kind = kind
        self.name = name
        self.owner = owner
        self.source = source
        super().__init__(f"{kind}/{name} is owned by source {owner!r}, not {source!r}")


class InvalidInput(StoreError):
    """A value handed to the store is malformed; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class Fenced(StoreError):
    """A write carried a fencing token older than the current leader's: its writer was deposed."""

    def __init__(self, token: int, current: int | None) -> None:
        super().__init__(
            f"write refused: fencing token {token} is stale (the leader now holds {current})"
        )
        self.token = token
        self.current = current
