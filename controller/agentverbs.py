"""Agent calls as data: one verb of the contract's table (agentapi.verbs) with its path
parameters, body and query.

A `Call` is made once and then either sent alone (`AgentClient.perform`) or with other
calls for the same host in one request (`AgentClient.batch`); both send the same method,
path and body, so a call means the same either way. Method, path and answer model come
from the verb; nothing here writes them again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pydantic import BaseModel, TypeAdapter

from agentapi import BatchCall, Verb


@dataclass(frozen=True)
class Call:
    """One agent call: the verb, its percent-encoded path under /v1/, body and query.

    `vm` is the domain the call is about (errors name it); `wait_s` is how long the verb
    itself may take beyond a call's usual timeout (a graceful stop waits for the guest).
    """

    verb: Verb
    path: str
    body: BaseModel | None = None
    query: Mapping[str, Any] = field(default_factory=dict)
    vm: str | None = None
    wait_s: float = 0.0

    def batch_call(self) -> BatchCall:
        """Return this call as one call of a batch."""
        return BatchCall.model_construct(
            method=self.verb.method,
            path=self.path,
            query=dict(self.query),
            body=None if self.body is None else self.body.model_dump(mode="json"),
        )

    def answer(self, raw: bytes) -> Any:
        """Return the verb's answer model decoded from the JSON answer `raw`."""
        model = self.verb.answer
        if isinstance(model, type) and issubclass(model, BaseModel):
            return model.model_validate_json(raw)
        return _adapter(model).validate_json(raw)

    def answer_from(self, body: Any) -> Any:
        """Return the verb's answer model from an already decoded JSON answer (a batch's)."""
        model = self.verb.answer
        if isinstance(model, type) and issubclass(model, BaseModel):
            return model.model_validate(body)
        return _adapter(model).validate_python(body)


def call(
    verb: Verb,
    body: BaseModel | None = None,
    *,
    query: Mapping[str, Any] | None = None,
    wait_s: float = 0.0,
    **path: str,
) -> Call:
    """Return the call of `verb` with path parameters `path` (e.g. `name="web-1"`).

    A call of a domain's verb (a path under `domains/`) names the domain as its `vm`.
    """
    vm = path.get("name") if verb.path.startswith("domains/") else None
    return Call(verb, verb.url(**path), body, query or {}, vm, wait_s)


@cache
def _adapter(model: Any) -> TypeAdapter[Any]:
    return TypeAdapter(model)
