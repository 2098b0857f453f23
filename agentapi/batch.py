"""Wire models of a batch: several verbs for one host in one request, each answered as it
would be alone. Which verbs a batch may carry is the verb table's `batchable` column
(agentapi.verbs.batchable)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from agentapi.common import WireModel

MAX_BATCH_CALLS = 256
"""Calls per batch; a plan wave rarely gives one host more than a few dozen."""


class BatchCall(WireModel):
    """One verb of a batch: as the request it would be alone, relative to /v1/."""

    method: Literal["PUT", "POST", "DELETE"]
    path: str = Field(max_length=512)
    """Percent-encoded path under /v1/, e.g. `domains/web-1/ensure-running`."""
    query: dict[str, str] = Field(default_factory=dict)
    body: Any = None
    """The JSON body the verb takes alone (None: no body)."""

    @model_validator(mode="after")
    def _batchable(self) -> BatchCall:
        # Imported here: the verb table names the batch verb, whose request holds this model.
        from agentapi.verbs import batchable

        if not batchable(self.method, self.path) or "/../" in f"/{self.path}/":
            raise ValueError(f"{self.method} {self.path} cannot be batched")
        return self


class BatchRequest(WireModel):
    """Verbs for one host, run concurrently; each answers as it would alone."""

    calls: list[BatchCall] = Field(min_length=1, max_length=MAX_BATCH_CALLS)


class BatchAnswer(WireModel):
    """One call's answer: its HTTP status and JSON body (an AgentError when it failed)."""

    status: int
    body: Any = None


class BatchResult(WireModel):
    """The answers of a batch, in the order of its calls."""

    answers: list[BatchAnswer]
