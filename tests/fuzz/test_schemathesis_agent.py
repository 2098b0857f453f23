"""Schemathesis against the node agent's HTTP API, called in-process over libvirt's test driver.

Every operation of nodeagent/openapi.json (the document the app serves; tests/agent keeps
the two equal) gets generated requests, valid and invalid, sent over ASGI to the real
agent app backed by a fresh test-driver host (tests/data/node.xml: network `default`,
pool `images`) with one defined and running domain. Responses must be no 5xx, carry a
documented status code and content type, and match their declared schema. Paths name the
existing domain, network, pool or volume half of the time, so verbs act on real objects.

Not fuzzed: the console websockets (serial console and the VNC/SPICE proxy). They are not
HTTP operations, so the OpenAPI document cannot list them and schemathesis cannot call
them; tests/agent/test_console_*.py drive them. The event stream is cut to a fraction of
a second (unbounded it never ends). Volume content up- and download reach libvirt's
virStorageVolUpload/Download, which the test driver lacks: there a 502 naming
VIR_ERR_NO_SUPPORT is the expected answer, and tests/lab runs them on QEMU hosts.

CORRAL_FUZZ_EXAMPLES=N raises the examples per operation (default 8) and adds
schemathesis' coverage phase (boundary and type-mutation cases of every parameter).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest
from fastapi import FastAPI
from hypothesis import strategies as st

from agentapi import AgentError, DomainSpec, VolumeSpec
from nodeagent import domains, storage
from nodeagent.agent import Agent
from nodeagent.openapi import OPENAPI_PATH
from nodeagent.server import create_app
from tests.helpers.fuzzing import CONFORMANCE, FUZZ, load_schema

NODE_URI = f"test://{Path(__file__).resolve().parents[1] / 'data' / 'node.xml'}"
EVENTS_S = 0.05
"""How long a generated event stream runs: without wait_s it streams until the client leaves."""

DOMAIN, NETWORK, POOL, VOLUME = "web-1", "default", "images", "web-1.qcow2"
SEEDS = {"name": DOMAIN, "pool": POOL, "vol": VOLUME}
"""Existing object per path parameter; /v1/networks/{name} and /v1/pools/{name} differ."""

schema = load_schema(OPENAPI_PATH)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    """Return the agent app over a test-driver host with a running domain and its volume."""
    hooks = tmp_path_factory.mktemp("hooks")
    agent = Agent(NODE_URI, hooks_dir=hooks, hook_timeout_s=2.0)
    agent.start(watchdog_interval_s=None)
    try:
        storage.ensure_volume(
            agent.ctx, POOL, VOLUME, VolumeSpec(name=VOLUME, capacity_bytes=16 << 20)
        )
        spec = DomainSpec(
            name=DOMAIN,
            uuid="6f0e8b1c-4b8e-4c47-9a43-000000000001",
            vcpus=1,
            memory_mib=96,
            disks=[{"target": "vda", "pool": POOL, "volume": VOLUME}],
            nics=[{"network": NETWORK, "mac": "52:54:00:00:00:01"}],
        )
        domains.ensure_domain_defined(agent.ctx, DOMAIN, spec)
        domains.ensure_running(agent.ctx, DOMAIN)
        yield create_app(agent)
    finally:
        agent.close()


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> Any:
    """Name an existing object half of the time (not for DELETE: the seeds must outlive it)."""
    operation = context.operation
    assert operation is not None
    if not path_parameters or operation.method == "delete":
        return st.just(path_parameters)
    seeds = dict(SEEDS)
    if operation.path.startswith("/v1/networks/"):
        seeds["name"] = NETWORK
    elif operation.path.startswith("/v1/pools/{name}"):
        seeds["name"] = POOL
    seeded = {key: seeds[key] for key in path_parameters if key in seeds}
    if not seeded:
        return st.just(path_parameters)
    return st.sampled_from([path_parameters, {**path_parameters, **seeded}])


@FUZZ
@schema.parametrize()
def test_agent_calls_conform_to_the_document(case: Any, served: FastAPI) -> None:
    if case.path == "/v1/events" and isinstance(case.query, dict):
        wait_s = case.query.get("wait_s")
        if wait_s is None or (isinstance(wait_s, int | float) and wait_s > EVENTS_S):
            case.query["wait_s"] = EVENTS_S
    if not case.path.endswith("/content"):
        case.call_and_validate(app=served, checks=CONFORMANCE)
        return
    response = case.call_and_validate(app=served, checks=CONFORMANCE[1:])
    if response.status_code >= 500:
        error = AgentError.model_validate(response.json())
        assert (response.status_code, error.libvirt_code) == (502, libvirt.VIR_ERR_NO_SUPPORT)
