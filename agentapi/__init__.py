"""The node agent's contract, shared by the agent (nodeagent/), the controller and the
simulated agents (controller/sim/), and importing none of them: the wire models by
resource, the drift check, and the one table of verbs (agentapi.verbs) from which the
agent's routes, the controller's client and the simulator take their methods and paths.

Importable without libvirt; depends on pydantic and the standard library only.
"""

from agentapi.batch import MAX_BATCH_CALLS, BatchAnswer, BatchCall, BatchRequest, BatchResult
from agentapi.common import (
    DISK_TARGET_PATTERN,
    MAC_PATTERN,
    NAME_PATTERN,
    XML_TEXT_PATTERN,
    AgentError,
    ApplyResult,
    ErrorType,
    VerbResult,
    WireModel,
    XmlText,
)
from agentapi.consoles import (
    CLOSE_ERROR_BASE,
    CLOSE_NORMAL,
    ConsoleMessage,
    GraphicsKind,
    GraphicsTicket,
    GraphicsTicketRequest,
)
from agentapi.domains import (
    BalloonRequest,
    DiskSpec,
    DomainSpec,
    DomainState,
    DomainStateName,
    GuestFilesystem,
    GuestInfo,
    GuestInterface,
    NicSpec,
    StopRequest,
)
from agentapi.drift import diff_domain_specs
from agentapi.events import AgentEvent
from agentapi.lease import FenceRecord, LeaseState
from agentapi.migration import MigrateRequest, MigrationJob
from agentapi.networks import NetworkSpec, NetworkState
from agentapi.snapshots import SnapshotSpec, SnapshotState
from agentapi.state import DomainStats, Health, HostState, HostStats
from agentapi.storage import PoolSpec, PoolState, VolumeApplyResult, VolumeSpec, VolumeState
from agentapi.verbs import API_PREFIX, BATCHABLE, VERBS, Verb, VerbTable, batchable

__all__ = [
    "API_PREFIX",
    "BATCHABLE",
    "CLOSE_ERROR_BASE",
    "CLOSE_NORMAL",
    "DISK_TARGET_PATTERN",
    "MAC_PATTERN",
    "MAX_BATCH_CALLS",
    "NAME_PATTERN",
    "VERBS",
    "XML_TEXT_PATTERN",
    "AgentError",
    "AgentEvent",
    "ApplyResult",
    "BalloonRequest",
    "BatchAnswer",
    "BatchCall",
    "BatchRequest",
    "BatchResult",
    "ConsoleMessage",
    "DiskSpec",
    "DomainSpec",
    "DomainState",
    "DomainStateName",
    "DomainStats",
    "ErrorType",
    "FenceRecord",
    "GraphicsKind",
    "GraphicsTicket",
    "GraphicsTicketRequest",
    "GuestFilesystem",
    "GuestInfo",
    "GuestInterface",
    "Health",
    "HostState",
    "HostStats",
    "LeaseState",
    "MigrateRequest",
    "MigrationJob",
    "NetworkSpec",
    "NetworkState",
    "NicSpec",
    "PoolSpec",
    "PoolState",
    "SnapshotSpec",
    "SnapshotState",
    "StopRequest",
    "Verb",
    "VerbResult",
    "VerbTable",
    "VolumeApplyResult",
    "VolumeSpec",
    "VolumeState",
    "WireModel",
    "XmlText",
    "batchable",
    "diff_domain_specs",
]
