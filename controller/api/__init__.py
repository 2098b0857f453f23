"""Corral's REST API: FastAPI app, bearer tokens with roles and scopes, watch, metrics."""

from controller.api.app import create_app
from controller.api.metrics import ControllerMetrics, PassObserver
from controller.api.rbac import ROLE_VERBS, Identity, Role, Verb
from controller.api.tokens import TokenError, TokenStore

__all__ = [
    "ROLE_VERBS",
    "ControllerMetrics",
    "Identity",
    "PassObserver",
    "Role",
    "TokenError",
    "TokenStore",
    "Verb",
    "create_app",
]
