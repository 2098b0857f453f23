"""The agent's verbs: one table of every call a node agent serves.

Each `Verb` names its HTTP method and path, the models of its request body and of its
answer, whether repeating it is harmless (`idempotent`) and whether a batch may carry
it (`batchable`). Everything else is derived from this table, never written again:
the agent's routes take method and path from it (nodeagent.verbroute), the
controller's client builds its calls from it (controller.agents, controller.agentverbs),
the simulated agents route by it (controller.sim.transport), and batches take their
allow-list from it (`batchable`). tests/agent/test_contract_table.py checks that every
verb has an agent route, a client method and a simulator handler, and nothing else does.

Paths are templates under `API_PREFIX` (`domains/{name}/ensure-running`); `Verb.url`
fills one in, percent-encoding each part.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal
from urllib.parse import quote

from pydantic import BaseModel

from agentapi.batch import BatchRequest, BatchResult
from agentapi.common import ApplyResult, VerbResult
from agentapi.consoles import ConsoleMessage, GraphicsTicket, GraphicsTicketRequest
from agentapi.domains import BalloonRequest, DomainSpec, DomainState, StopRequest
from agentapi.events import AgentEvent
from agentapi.lease import LeaseState
from agentapi.migration import MigrateRequest, MigrationJob
from agentapi.networks import NetworkSpec, NetworkState
from agentapi.snapshots import SnapshotSpec, SnapshotState
from agentapi.state import Health, HostState, HostStats
from agentapi.storage import PoolSpec, PoolState, VolumeApplyResult, VolumeSpec, VolumeState

API_PREFIX = "/v1/"
"""Every verb's path lies under this prefix; a new major version of the contract gets another."""

Method = Literal["GET", "PUT", "POST", "DELETE", "WS"]
"""An HTTP method, or WS for a websocket (opened by a GET with an Upgrade header)."""
Stream = Literal["sse", "upload", "download", "websocket"]
"""How a verb's bytes flow when they are not one JSON body each way: server-sent events
(`answer` is the model of each event), a raw request body (upload), a raw answer
(download), or a websocket (`answer` is the model of its text frames, if any)."""

_PARAM = re.compile(r"\{(\w+)\}")


def _pattern(path: str, named: bool) -> str:
    """Return the regex of a path template: each `{param}` is one path segment."""
    group = r"(?P<\1>[^/]+)" if named else "[^/]+"
    return _PARAM.sub(group, re.escape(path).replace(r"\{", "{").replace(r"\}", "}"))


@dataclass(frozen=True)
class Verb:
    """One call the agent serves: method, path template under API_PREFIX, models.

    `request` is the model of the JSON body (None: no body, or raw bytes for an upload);
    a request model whose every field has a default may be left out, meaning its
    defaults. `answer` is the model of the JSON answer (`list[Model]` for a list), sent
    with HTTP `status`. `idempotent`: repeating the call changes nothing more (the
    ensure verbs and reads); a call that is not says so in its name. `batchable`: a batch
    may carry it (only idempotent verbs a plan's actions make). `name` is the attribute
    the table gives it, and the name of the client method and simulator handler.
    """

    method: Method
    path: str
    answer: Any = None
    request: type[BaseModel] | None = None
    idempotent: bool = True
    batchable: bool = False
    status: int = 200
    stream: Stream | None = None
    name: str = field(default="", init=False)

    def __set_name__(self, owner: type, name: str) -> None:
        object.__setattr__(self, "name", name)

    @property
    def params(self) -> tuple[str, ...]:
        """Return the names of the path's parameters, in order."""
        return tuple(_PARAM.findall(self.path))

    @property
    def route(self) -> str:
        """Return the full path template, e.g. `/v1/domains/{name}` (as FastAPI writes it)."""
        return API_PREFIX + self.path

    def url(self, **params: str) -> str:
        """Return the path under API_PREFIX with `params` filled in, each percent-encoded."""
        if set(params) != set(self.params):
            raise TypeError(f"{self.name} takes path parameters {self.params}: {sorted(params)}")
        return _PARAM.sub(lambda m: quote(str(params[m.group(1)]), safe=""), self.path)

    @cached_property
    def _regex(self) -> re.Pattern[str]:
        return re.compile(f"^{_pattern(self.path, named=True)}$")

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """Return the path parameters when `method path` (under API_PREFIX) is this verb."""
        if method != self.method:
            return None
        found = self._regex.match(path)
        return None if found is None else found.groupdict()


class VerbTable:
    """The verbs by name (`VERBS.ensure_running`), iterable in table order."""

    def __iter__(self) -> Iterator[Verb]:
        return (verb for verb in vars(type(self)).values() if isinstance(verb, Verb))

    def __getitem__(self, name: str) -> Verb:
        verb = getattr(type(self), name, None)
        if not isinstance(verb, Verb):
            raise KeyError(name)
        return verb

    def find(self, method: str, path: str) -> tuple[Verb, dict[str, str]] | None:
        """Return the verb `method path` (under API_PREFIX, decoded) calls, with its
        path parameters; None when no verb has that method and path."""
        for verb in self._by_method.get(method, ()):
            params = verb.match(method, path)
            if params is not None:
                return verb, params
        return None

    @cached_property
    def _by_method(self) -> dict[str, tuple[Verb, ...]]:
        return {m: tuple(v for v in self if v.method == m) for m in {v.method for v in self}}


class _Verbs(VerbTable):
    # --- the host ----------------------------------------------------------------------------
    health = Verb("GET", "health", Health)
    get_state = Verb("GET", "state", HostState)
    get_stats = Verb("GET", "stats", HostStats)
    events = Verb("GET", "events", AgentEvent, stream="sse")
    get_lease = Verb("GET", "lease", LeaseState)
    batch = Verb("POST", "batch", BatchResult, request=BatchRequest)

    # --- domains -----------------------------------------------------------------------------
    get_domain = Verb("GET", "domains/{name}", DomainState)
    ensure_domain_defined = Verb(
        "PUT", "domains/{name}", ApplyResult, request=DomainSpec, batchable=True
    )
    ensure_running = Verb("POST", "domains/{name}/ensure-running", VerbResult, batchable=True)
    ensure_stopped = Verb(
        "POST", "domains/{name}/ensure-stopped", VerbResult, request=StopRequest, batchable=True
    )
    ensure_destroyed = Verb("POST", "domains/{name}/ensure-destroyed", VerbResult, batchable=True)
    ensure_undefined = Verb("DELETE", "domains/{name}", VerbResult, batchable=True)
    set_balloon = Verb("PUT", "domains/{name}/balloon", VerbResult, request=BalloonRequest)

    # --- snapshots ---------------------------------------------------------------------------
    list_snapshots = Verb("GET", "domains/{name}/snapshots", list[SnapshotState])
    get_snapshot = Verb("GET", "domains/{name}/snapshots/{snap}", SnapshotState)
    ensure_snapshot = Verb(
        "PUT", "domains/{name}/snapshots/{snap}", VerbResult, request=SnapshotSpec, batchable=True
    )
    ensure_snapshot_deleted = Verb(
        "DELETE", "domains/{name}/snapshots/{snap}", VerbResult, batchable=True
    )
    revert_snapshot = Verb(
        "POST", "domains/{name}/snapshots/{snap}/revert", VerbResult, idempotent=False
    )

    # --- migration ---------------------------------------------------------------------------
    migrate = Verb(
        "POST",
        "domains/{name}/migrate",
        MigrationJob,
        request=MigrateRequest,
        status=202,
        batchable=True,
    )
    get_migration = Verb("GET", "domains/{name}/migration", MigrationJob)
    cancel_migration = Verb("DELETE", "domains/{name}/migration", VerbResult, batchable=True)

    # --- networks ----------------------------------------------------------------------------
    list_networks = Verb("GET", "networks", list[NetworkState])
    get_network = Verb("GET", "networks/{name}", NetworkState)
    ensure_network_defined = Verb(
        "PUT", "networks/{name}", ApplyResult, request=NetworkSpec, batchable=True
    )
    ensure_network_active = Verb(
        "POST", "networks/{name}/ensure-active", VerbResult, batchable=True
    )
    ensure_network_inactive = Verb(
        "POST", "networks/{name}/ensure-inactive", VerbResult, batchable=True
    )
    ensure_network_undefined = Verb("DELETE", "networks/{name}", VerbResult, batchable=True)

    # --- storage -----------------------------------------------------------------------------
    list_pools = Verb("GET", "pools", list[PoolState])
    get_pool = Verb("GET", "pools/{name}", PoolState)
    ensure_pool = Verb("PUT", "pools/{name}", ApplyResult, request=PoolSpec, batchable=True)
    ensure_pool_undefined = Verb("DELETE", "pools/{name}", VerbResult, batchable=True)
    get_volume = Verb("GET", "pools/{pool}/volumes/{vol}", VolumeState)
    ensure_volume = Verb(
        "PUT", "pools/{pool}/volumes/{vol}", VolumeApplyResult, request=VolumeSpec, batchable=True
    )
    ensure_volume_deleted = Verb("DELETE", "pools/{pool}/volumes/{vol}", VerbResult, batchable=True)
    upload_volume = Verb("PUT", "pools/{pool}/volumes/{vol}/content", VerbResult, stream="upload")
    download_volume = Verb("GET", "pools/{pool}/volumes/{vol}/content", stream="download")

    # --- consoles ----------------------------------------------------------------------------
    open_console = Verb(
        "WS", "domains/{name}/console", ConsoleMessage, idempotent=False, stream="websocket"
    )
    issue_graphics_ticket = Verb(
        "POST",
        "domains/{name}/graphics-tickets",
        GraphicsTicket,
        request=GraphicsTicketRequest,
        idempotent=False,
    )
    open_graphics = Verb("WS", "domains/{name}/graphics", idempotent=False, stream="websocket")


VERBS = _Verbs()
"""Every verb the agent serves, by name."""

BATCHABLE: tuple[Verb, ...] = tuple(verb for verb in VERBS if verb.batchable)
"""The verbs a batch may carry: the idempotent ensure verbs a plan's actions make. Reads,
streams (events, volume content, consoles), the lease and batches themselves are refused."""
_BATCHABLE_PATHS = {
    method: re.compile(
        "^(?:"
        + "|".join(_pattern(verb.path, named=False) for verb in BATCHABLE if verb.method == method)
        + ")$"
    )
    for method in {verb.method for verb in BATCHABLE}
}


def batchable(method: str, path: str) -> bool:
    """Return True when a batch may carry `method path` (percent-encoded, under API_PREFIX)."""
    allowed = _BATCHABLE_PATHS.get(method)
    return allowed is not None and allowed.match(path) is not None
