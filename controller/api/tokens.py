"""API bearer tokens: hashed at rest, with a role and an optional label scope.

A token reads `corral_<id>_<secret>`. Only sha256(secret) is stored, under the
public `id`; a presented token is looked up by id and its hash compared in
constant time. The table lives beside the store's tables in the same database
but in its own metadata, created on first use (it is the API's, not the
reconcile core's, and the store's migrations do not know it).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Column, MetaData, String, insert, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine
from sqlmodel import Field, SQLModel

from controller.api.rbac import Identity, Role
from controller.api.selectors import SelectorError, parse_selector
from controller.store.engine import WRITE_OPTION, make_engine, mapped_errors, resolve_url
from controller.store.types import UTCDateTime

TOKEN_RE = re.compile(r"^corral_([0-9a-f]{16})_([A-Za-z0-9_-]{20,128})$")
CACHE_TTL_S = 2.0
"""How long a verified token is trusted without a database read: a revocation takes
effect within this many seconds on every API process."""
_DUMMY_HASH = hashlib.sha256(b"no such token").hexdigest()


class TokenTable(SQLModel):
    """Base of the API's own tables: metadata apart from the store's."""

    metadata = MetaData()


class TokenRow(TokenTable, table=True):
    __tablename__ = "api_tokens"

    id: str = Field(sa_column=Column(String(16), primary_key=True))
    name: str = Field(sa_column=Column(String(128), nullable=False, unique=True))
    role: str = Field(sa_column=Column(String(16), nullable=False))
    scope: str | None = Field(default=None, sa_column=Column(String(1024)))
    token_hash: str = Field(sa_column=Column(String(64), nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


tokens_table = TokenRow.__table__  # type: ignore[attr-defined]


class TokenError(ValueError):
    """A token cannot be created or revoked as asked; `field` names the bad input."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True)
class TokenInfo:
    """A stored token without its secret."""

    id: str
    name: str
    role: Role
    scope: str | None
    created_at: datetime
    revoked_at: datetime | None


def hash_secret(secret: str) -> str:
    """Return the hex sha256 of a token's secret part."""
    return hashlib.sha256(secret.encode()).hexdigest()


class TokenStore:
    """Creates, lists, revokes and verifies API tokens in the store's database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._writer = engine.execution_options(**{WRITE_OPTION: True})
        self._url = engine.url
        self._cache: dict[str, tuple[float, Identity, str]] = {}
        self._lock = threading.Lock()
        with mapped_errors(self._url):
            TokenTable.metadata.create_all(self._writer, checkfirst=True)

    @classmethod
    def open(cls, url: str | None = None, state_dir: Path | None = None) -> TokenStore:
        """Return the token store of the database at `url` (None: SQLite in the state dir)."""
        return cls(make_engine(resolve_url(url, state_dir)))

    def close(self) -> None:
        self._engine.dispose()

    def create(self, name: str, role: Role | str, scope: str | None = None) -> str:
        """Create a token and return it; this is the only time its secret is visible.

        Raises TokenError for a taken name, an unknown role or a scope that does not parse.
        """
        if not name or len(name) > 128 or not re.match(r"^[A-Za-z0-9@._:-]+$", name):
            raise TokenError("name", f"use 1-128 letters, digits, '@._:-', got {name!r}")
        try:
            role = Role(role)
        except ValueError:
            raise TokenError("role", f"expected viewer, operator or admin, got {role!r}") from None
        if scope is not None:
            try:
                parse_selector(scope)
            except SelectorError as exc:
                raise TokenError("scope", str(exc)) from exc
        token_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        row = {
            "id": token_id,
            "name": name,
            "role": role.value,
            "scope": scope or None,
            "token_hash": hash_secret(secret),
            "created_at": datetime.now(UTC),
        }
        with mapped_errors(self._url):
            try:
                with self._writer.connect() as conn, conn.begin():
                    conn.execute(insert(tokens_table).values(**row))
            except sa_exc.IntegrityError as exc:
                raise TokenError("name", f"a token named {name!r} exists already") from exc
        return f"corral_{token_id}_{secret}"

    def list(self) -> list[TokenInfo]:
        """Return every token (revoked ones too), by name."""
        with mapped_errors(self._url), self._engine.connect() as conn:
            rows = conn.execute(select(tokens_table).order_by(tokens_table.c.name)).all()
        return [
            TokenInfo(r.id, r.name, Role(r.role), r.scope, r.created_at, r.revoked_at) for r in rows
        ]

    def revoke(self, name: str) -> bool:
        """Revoke the token named `name`; return False when there is no such live token."""
        with mapped_errors(self._url), self._writer.connect() as conn, conn.begin():
            done = conn.execute(
                update(tokens_table)
                .where(tokens_table.c.name == name, tokens_table.c.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            ).rowcount
        with self._lock:
            self._cache.clear()
        return bool(done)

    def authenticate_cached(self, token: str) -> Identity | bool | None:
        """Return the identity of a token verified within CACHE_TTL_S, None for a token
        that cannot be valid, or False when the database must be asked (no I/O here)."""
        match = TOKEN_RE.match(token)
        secret_hash = hash_secret(match.group(2) if match else token)
        if not match:
            hmac.compare_digest(secret_hash, _DUMMY_HASH)
            return None
        with self._lock:
            cached = self._cache.get(match.group(1))
        if cached and cached[0] > time.monotonic():
            return cached[1] if hmac.compare_digest(secret_hash, cached[2]) else None
        return False

    def authenticate(self, token: str) -> Identity | None:
        """Return the identity of a valid, unrevoked token, else None (never saying why)."""
        cached = self.authenticate_cached(token)
        if cached is not False:
            return cached
        match = TOKEN_RE.match(token)
        assert match is not None
        secret_hash = hash_secret(match.group(2))
        token_id = match.group(1)
        now = time.monotonic()
        with mapped_errors(self._url), self._engine.connect() as conn:
            row = conn.execute(select(tokens_table).where(tokens_table.c.id == token_id)).first()
        stored = row.token_hash if row is not None and row.revoked_at is None else _DUMMY_HASH
        if not hmac.compare_digest(secret_hash, stored) or row is None or row.revoked_at:
            return None
        identity = Identity(row.name, Role(row.role), parse_selector(row.scope))
        with self._lock:
            self._cache[token_id] = (now + CACHE_TTL_S, identity, stored)
        return identity
