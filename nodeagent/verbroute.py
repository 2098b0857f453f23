"""The agent's route of a verb: FastAPI registration with the method, path, answer model and
status of the verb table (agentapi.verbs), so that no route writes its path again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, FastAPI
from fastapi.responses import StreamingResponse

from agentapi import API_PREFIX, VERBS, Verb

F = TypeVar("F", bound=Callable[..., Any])

_OCTETS = "application/octet-stream"
_STREAMED: dict[str, dict[str, Any]] = {
    "sse": {
        "response_class": StreamingResponse,
        "responses": {200: {"content": {"text/event-stream": {}}}},
    },
    "download": {
        "response_class": StreamingResponse,
        "responses": {200: {"content": {_OCTETS: {}}}},
    },
    "upload": {
        "openapi_extra": {
            "requestBody": {
                "required": True,
                "content": {_OCTETS: {"schema": {"type": "string", "format": "binary"}}},
            }
        },
    },
}
"""What FastAPI needs told about a verb whose bytes are not one JSON body each way: it
cannot see a streamed answer's media type, nor a raw body the handler reads itself."""


def verb_route(router: FastAPI | APIRouter, verb: Verb) -> Callable[[F], F]:
    """Return a decorator that makes the function the agent's route of `verb`.

    Method and path come from the table; a JSON answer is validated and documented as
    the verb's answer model, sent with the verb's status; a websocket verb becomes a
    websocket route. The function's name and docstring name and describe the operation.
    """
    if verb.method == "WS":
        return router.websocket(verb.route)
    options = dict(_STREAMED.get(verb.stream or "", {}))
    if verb.stream in (None, "upload"):
        options["response_model"] = verb.answer
    if verb.status != 200:
        options["status_code"] = verb.status
    return router.api_route(verb.route, methods=[verb.method], **options)


_UPLOADS = tuple(verb for verb in VERBS if verb.stream == "upload")


def is_upload(method: str, path: str) -> bool:
    """Return True for a request of an upload verb: its raw body is streamed to disk and
    may be as large as a volume (the agent's body limit exempts it)."""
    relative = path.removeprefix(API_PREFIX)
    return relative != path and any(verb.match(method, relative) is not None for verb in _UPLOADS)
