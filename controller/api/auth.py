"""Bearer-token authentication and role checks as FastAPI dependencies."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from controller.api.errors import FORBIDDEN, UNAUTHORIZED, ApiError
from controller.api.rbac import ROLE_VERBS, Identity, Role, Verb

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="corral"'}


async def authenticate(request: Request) -> Identity:
    """Return the caller's identity; 401 (saying nothing of what exists) otherwise.

    A token verified in the last seconds is answered from memory on the event loop;
    only a cache miss reads the database (on a worker thread).
    """
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    identity = None
    if scheme.lower() == "bearer" and token.strip():
        tokens = request.app.state.tokens
        identity = tokens.authenticate_cached(token.strip())
        if identity is False:
            identity = await run_in_threadpool(tokens.authenticate, token.strip())
    if identity is None:
        raise ApiError(401, UNAUTHORIZED, "a valid bearer token is required", headers=_CHALLENGE)
    request.state.identity = identity
    return identity


def require(verb: Verb) -> Callable[..., Identity]:
    """Return a dependency that authenticates and checks the caller's role allows `verb`."""

    async def check(identity: Identity = Depends(authenticate)) -> Identity:
        if not identity.may(verb):
            raise ApiError(
                403,
                FORBIDDEN,
                f"{identity.name} ({identity.role.value}) may not {verb.value}: "
                f"that needs the {_least_role(verb)} role",
            )
        return identity

    check.__name__ = f"require_{verb.value}"
    return check


def _least_role(verb: Verb) -> str:
    return next(role.value for role in Role if verb in ROLE_VERBS[role])
