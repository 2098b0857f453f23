"""Browser sessions: the login form puts a bearer token in an HttpOnly cookie.

The cookie is SameSite=Strict (and Secure over HTTPS); every form that changes state
also carries a token derived from the session (double submit), so a page of another
site cannot make the browser act. Pages without a valid session send the browser to
the login page; nothing else is served without a token.
"""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from controller.api.rbac import Identity

COOKIE = "corral_session"
CSRF_FIELD = "csrf"
SESSION_MAX_AGE_S = 8 * 3600


class LoginRequired(Exception):
    """The request carries no valid session: answer with the login page."""


def csrf_token(session: str) -> str:
    """Return the anti-forgery token of a session (a hash: it does not reveal the token)."""
    return hashlib.sha256(b"corral-csrf:" + session.encode()).hexdigest()[:40]


def csrf_ok(session: str, presented: str | None) -> bool:
    """Return whether a form's anti-forgery token belongs to the session."""
    return bool(presented) and hmac.compare_digest(csrf_token(session), str(presented))


async def identify(request: Request, token: str | None = None) -> Identity | None:
    """Return the identity of `token` (default: the session cookie), or None."""
    token = token if token is not None else request.cookies.get(COOKIE, "")
    if not token:
        return None
    tokens = request.app.state.tokens
    identity = tokens.authenticate_cached(token)
    if identity is False:
        identity = await run_in_threadpool(tokens.authenticate, token)
    return identity or None


async def session_identity(request: Request) -> Identity:
    """Return the caller of a dashboard page; raise LoginRequired without a valid session."""
    identity = await identify(request)
    if identity is None:
        raise LoginRequired()
    request.state.identity = identity
    return identity
