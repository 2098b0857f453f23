"""What every resource's wire models share: the base model, name and text rules, the
error body of every failed call, and the two answers of the ensure verbs."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,62}$"
XML_TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]*$"
"""Text that may go into libvirt XML: no control characters XML 1.0 forbids."""
XmlText = Annotated[str, Field(pattern=XML_TEXT_PATTERN)]
"""A free-text field that is written into libvirt XML: refused as invalid_spec, naming
the field, rather than failing in libvirt's parser."""
MAC_PATTERN = r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$"
DISK_TARGET_PATTERN = r"^(vd|sd|hd)[a-z]{1,2}$"
ErrorType = Literal[
    "not_found",
    "conflict",
    "libvirt_error",
    "hook_failed",
    "invalid_spec",
    "unavailable",
    "unauthorized",
]


class WireModel(BaseModel):
    """Base of every wire model: unknown fields are refused, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class AgentError(WireModel):
    """The JSON body of every failed agent call."""

    type: ErrorType
    message: str
    retryable: bool = False
    libvirt_code: int | None = None
    field: str | None = None


class ApplyResult(WireModel):
    """What an ensure-defined verb did: changed, fields applied live, fields needing a restart."""

    name: str
    changed: bool
    created: bool = False
    applied_live: list[str] = Field(default_factory=list)
    restart_required: list[str] = Field(default_factory=list)


class VerbResult(WireModel):
    """Outcome of an ensure verb: `changed` is false when the object already was as asked."""

    name: str
    changed: bool
    state: str | None = None
    message: str | None = None
