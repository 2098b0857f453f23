"""Shared building blocks of every kind: names, quantities, metadata, conditions.

Manifests are Kubernetes-shaped and camelCase on the wire; the Python models are
snake_case. Every model forbids unknown fields: a typo in a manifest is an error,
never a silently ignored setting.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
)
from pydantic.alias_generators import to_camel

API_GROUP = "corral.dev"
API_VERSION = f"{API_GROUP}/v1alpha1"


def quote(value: Any) -> str:
    """Return a value the way a manifest writes it, for messages: "20 GB", 3, true, null."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return str(value)


# --- names -------------------------------------------------------------------------------

DNS_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_LABEL_MAX = 63


def check_dns_label(value: str) -> str:
    """Return `value` if it is a DNS-1123 label, else raise ValueError saying why.

    Names become libvirt domain, network and pool names and Kubernetes object
    names, so the strictest common rule applies: lowercase letters, digits and
    '-', starting and ending with a letter or digit, at most 63 characters.
    """
    if not isinstance(value, str):
        raise ValueError(f"expected a name (string), got {type(value).__name__}")
    if len(value) > DNS_LABEL_MAX:
        raise ValueError(f"name {quote(value)} is {len(value)} characters long, the limit is 63")
    if not DNS_LABEL_RE.match(value):
        raise ValueError(
            f"name {quote(value)} is not a DNS-1123 label: use lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return value


Name = Annotated[
    str,
    AfterValidator(check_dns_label),
    WithJsonSchema({"type": "string", "maxLength": DNS_LABEL_MAX, "pattern": DNS_LABEL_RE.pattern}),
]

LABEL_KEY_RE = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")


def check_labels(value: dict[str, str]) -> dict[str, str]:
    """Return `value` if every key and value is a valid Kubernetes label, else raise."""
    for key, val in value.items():
        if not LABEL_KEY_RE.match(key):
            raise ValueError(f"label key {quote(key)} is not a valid label key ([prefix/]name)")
        if not LABEL_VALUE_RE.match(val):
            raise ValueError(
                f"label {key}={quote(val)}: a value is at most 63 letters, digits, '-', '_' "
                "or '.', starting and ending with a letter or digit"
            )
    return value


Labels = Annotated[dict[str, str], AfterValidator(check_labels)]

# --- quantities --------------------------------------------------------------------------

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50}
_DECIMAL = {"k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15}
QUANTITY_RE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|k|K|M|G|T|P)?$")
QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|k|K|M|G|T|P)?$"


def parse_bytes(value: Any) -> int:
    """Return a byte count from "4Gi", "512Mi", "1G", "1024" or an int; raise ValueError.

    Binary suffixes (Ki, Mi, Gi, Ti, Pi) are powers of 1024, decimal ones (k, M, G,
    T, P) powers of 1000, as in Kubernetes. Fractions are allowed when the result is
    a whole number of bytes ("1.5Gi").
    """
    if isinstance(value, bool):
        raise ValueError(f'expected a quantity like "20Gi", got {quote(value)}')
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"expected a non-negative size, got {value}")
        return value
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    if not isinstance(value, str):
        raise ValueError(f'expected a quantity like "20Gi", got {quote(value)}')
    match = QUANTITY_RE.match(value)
    if not match:
        raise ValueError(f'expected a quantity like "20Gi" or "512Mi", got {quote(value)}')
    number, suffix = match.groups()
    factor = _BINARY.get(suffix or "") or _DECIMAL.get(suffix or "") or 1
    if "." in number:
        whole, frac = number.split(".")
        numerator = int(whole + frac) * factor
        denominator = 10 ** len(frac)
        if numerator % denominator:
            raise ValueError(f"quantity {quote(value)} is not a whole number of bytes")
        return numerator // denominator
    return int(number) * factor


def format_bytes(value: int) -> str:
    """Return the shortest exact binary-suffixed form of a byte count ("4Gi", "1536Mi")."""
    for suffix in ("Pi", "Ti", "Gi", "Mi", "Ki"):
        factor = _BINARY[suffix]
        if value and value % factor == 0:
            return f"{value // factor}{suffix}"
    return str(value)


_QUANTITY_JSON_SCHEMA = {
    "anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": QUANTITY_PATTERN}],
    "x-kubernetes-int-or-string": True,
}

ByteQuantity = Annotated[
    int,
    BeforeValidator(parse_bytes),
    PlainSerializer(format_bytes, return_type=str, when_used="json-unless-none"),
    WithJsonSchema(_QUANTITY_JSON_SCHEMA),
]
"""A size in bytes, written in manifests as "20Gi"; serialised in its canonical form."""

MILLI_RE = re.compile(r"^([0-9]+)m$")
MILLICPU_PATTERN = r"^([0-9]+m|[0-9]+(\.[0-9]{1,3})?)$"


def parse_millicpus(value: Any) -> int:
    """Return CPU millicores from 2, 1.5, "2" or "500m"; raise ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f'expected a CPU quantity like 2 or "500m", got {quote(value)}')
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f'expected a CPU quantity like 2 or "500m", got {quote(value)}')
        if value < 0:
            raise ValueError(f"expected a non-negative CPU quantity, got {value}")
        millis = value * 1000
        if not float(millis).is_integer():
            raise ValueError(f"CPU quantity {value} is finer than one millicore")
        return int(millis)
    if isinstance(value, str) and re.match(MILLICPU_PATTERN, value):
        match = MILLI_RE.match(value)
        return int(match.group(1)) if match else parse_millicpus(float(value))
    raise ValueError(f'expected a CPU quantity like 2 or "500m", got {quote(value)}')


def format_millicpus(value: int) -> str | int:
    """Return whole CPUs as an int, else the "500m" form."""
    return value // 1000 if value % 1000 == 0 else f"{value}m"


MilliCPU = Annotated[
    int,
    BeforeValidator(parse_millicpus),
    PlainSerializer(format_millicpus, when_used="json-unless-none"),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": MILLICPU_PATTERN},
            ],
            "x-kubernetes-int-or-string": True,
        }
    ),
]
"""A CPU amount in millicores, written as 2, 1.5 or "500m"."""


def parse_cpu_count(value: Any) -> int:
    """Return a whole, positive vCPU count from 2 or "2"; raise ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"expected a whole number of CPUs, got {quote(value)}")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise ValueError(f"expected a whole number of CPUs like 2, got {quote(value)}")
    if value < 1:
        raise ValueError(f"expected at least 1 CPU, got {value}")
    return value


CPUCount = Annotated[
    int,
    BeforeValidator(parse_cpu_count),
    WithJsonSchema({"type": "integer", "minimum": 1}),
]

# --- base models -------------------------------------------------------------------------


class CorralModel(BaseModel):
    """Base of every manifest model: camelCase aliases, unknown fields rejected."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        use_enum_values=False,
        validate_default=False,
    )

    def to_manifest(self) -> dict[str, Any]:
        """Return the object as a manifest dict: camelCase, JSON types, defaults omitted."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_unset=True)


class LabelSelectorOperator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


class LabelSelectorRequirement(CorralModel):
    """One expression of a label selector, as in Kubernetes."""

    key: str
    operator: LabelSelectorOperator
    values: list[str] = Field(default_factory=list)


class LabelSelector(CorralModel):
    """Selects objects by labels; an empty selector selects everything."""

    match_labels: Labels = Field(default_factory=dict)
    match_expressions: list[LabelSelectorRequirement] = Field(default_factory=list)

    def matches(self, labels: dict[str, str]) -> bool:
        """Return True when `labels` satisfy every label and expression of the selector."""
        for key, value in self.match_labels.items():
            if labels.get(key) != value:
                return False
        for req in self.match_expressions:
            present = req.key in labels
            if req.operator is LabelSelectorOperator.IN and labels.get(req.key) not in req.values:
                return False
            if (
                req.operator is LabelSelectorOperator.NOT_IN
                and present
                and (labels[req.key] in req.values)
            ):
                return False
            if req.operator is LabelSelectorOperator.EXISTS and not present:
                return False
            if req.operator is LabelSelectorOperator.DOES_NOT_EXIST and present:
                return False
        return True

    def describe(self) -> str:
        """Return the selector in kubectl's short form: "zone=a,tier in (web,db)"."""
        parts = [f"{k}={v}" for k, v in sorted(self.match_labels.items())]
        for req in self.match_expressions:
            if req.operator in (LabelSelectorOperator.IN, LabelSelectorOperator.NOT_IN):
                op = "in" if req.operator is LabelSelectorOperator.IN else "notin"
                parts.append(f"{req.key} {op} ({','.join(req.values)})")
            elif req.operator is LabelSelectorOperator.EXISTS:
                parts.append(req.key)
            else:
                parts.append(f"!{req.key}")
        return ",".join(parts) or "<everything>"


class ObjectMeta(CorralModel):
    """Identity and labels of an object; generation and resourceVersion are set by the store."""

    name: Name
    labels: Labels = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    generation: int | None = Field(default=None, ge=0)
    resource_version: str | None = None


PROTECT_ANNOTATION = f"{API_GROUP}/protect"
"""An object annotated `corral.dev/protect: "true"` is never deleted by prune."""

# --- status ------------------------------------------------------------------------------


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class ConditionType(StrEnum):
    READY = "Ready"
    RECONCILING = "Reconciling"
    STALLED = "Stalled"


REASON_RE = re.compile(r"^[A-Z][A-Za-z0-9]*$")


def check_reason(value: str) -> str:
    """Return `value` if it is a CamelCase reason, else raise ValueError."""
    if not REASON_RE.match(value):
        raise ValueError(f"a reason is CamelCase like 'NoHostFits', got {quote(value)}")
    return value


def utc_now_seconds() -> datetime:
    """Return the current UTC time truncated to seconds (the resolution of conditions)."""
    return datetime.now(UTC).replace(microsecond=0)


class Condition(CorralModel):
    """One aspect of an object's state, as in Kubernetes and Flux."""

    type: str
    status: ConditionStatus
    reason: Annotated[str, AfterValidator(check_reason)]
    message: str = ""
    observed_generation: int | None = None
    last_transition_time: datetime


class ObjectStatus(CorralModel):
    """Status common to every kind: written only by the controller."""

    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    source_revision: str | None = None

    def condition(self, type_: str) -> Condition | None:
        """Return the condition of that type, or None."""
        return next((c for c in self.conditions if c.type == type_), None)


SpecT = TypeVar("SpecT", bound=CorralModel)
StatusT = TypeVar("StatusT", bound=ObjectStatus)


class Resource(CorralModel, Generic[SpecT, StatusT]):
    """An object of any kind: apiVersion, kind, metadata, spec and status."""

    api_version: Literal["corral.dev/v1alpha1"] = API_VERSION
    kind: str
    metadata: ObjectMeta
    spec: SpecT
    status: StatusT | None = None

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def ref(self) -> str:
        """Return "Kind/name", the way messages name an object."""
        return f"{self.kind}/{self.metadata.name}"
