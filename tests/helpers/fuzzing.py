"""What the schemathesis tests share: the example budget, the conformance checks, and
loading an OpenAPI document with the coverage phase on for long runs."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

EXAMPLES_ENV = os.environ.get("CORRAL_FUZZ_EXAMPLES")
EXAMPLES = int(EXAMPLES_ENV or "8")
"""Examples per operation; CORRAL_FUZZ_EXAMPLES=N raises it and adds the coverage phase."""

CONFORMANCE = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))


def load_schema(path: Path) -> Any:
    """Return the schemathesis schema of the OpenAPI document at `path`."""
    return schemathesis.openapi.from_dict(
        json.loads(path.read_text()),
        config=SchemathesisConfig.from_dict(
            {"phases": {"coverage": {"enabled": EXAMPLES_ENV is not None}}}
        ),
    )
