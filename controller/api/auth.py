"""Bearer-token authentication and role checks as FastAPI dependencies."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, Request

from controller.api.errors import FORBIDDEN, UNAUTHORIZED, ApiError
from controller.api.rbac import ROLE_VERBS, Identity, Role, Verb

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="corral"'}


def authenticate(request: Request) -> Identity:
    """Return the caller's identity; 401 (saying nothing of what exists) otherwise."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    identity = None
    if scheme.lower() == "bearer" and token.strip():
        identity = request.app.state.tokens.authenticate(token.strip())
    if identity is None:
        raise ApiError(401, UNAUTHORIZED, "a valid bearer token is required", headers=_CHALLENGE)
    request.state.identity = identity
    return identity


def require(verb: Verb) -> Callable[..., Identity]:
    """Return a dependency that authenticates and checks the caller's role allows `verb`."""

    def check(identity: Identity = Depends(authenticate)) -> Identity:
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
