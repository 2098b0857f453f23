"""The one definition of Corral's manifest format (pydantic v2 models)."""

from schemas.affinity import AffinityGroup, AffinityGroupSpec, AffinityRule
from schemas.host import Host, HostPhase, HostSpec, HostStatus
from schemas.kinds import KINDS, PLURALS, AnyResource, resolve_kind
from schemas.meta import (
    API_VERSION,
    Condition,
    ConditionStatus,
    ConditionType,
    LabelSelector,
    ObjectMeta,
    ObjectStatus,
    Resource,
    format_bytes,
    parse_bytes,
)
from schemas.network import Network, NetworkMode, NetworkSpec
from schemas.policy import SchedulingPolicy, SchedulingPolicySpec
from schemas.references import ReferenceProblem, check_references
from schemas.snapshot import Snapshot, SnapshotSpec
from schemas.storagepool import PoolType, StoragePool, StoragePoolSpec
from schemas.template import Template, TemplateSpec, merge_template
from schemas.vm import (
    RunStrategy,
    VirtualMachine,
    VirtualMachineSpec,
    VirtualMachineStatus,
    VMPhase,
)
from schemas.volume import Volume, VolumeFormat, VolumeSpec

__all__ = [
    "API_VERSION",
    "KINDS",
    "PLURALS",
    "AffinityGroup",
    "AffinityGroupSpec",
    "AffinityRule",
    "AnyResource",
    "Condition",
    "ConditionStatus",
    "ConditionType",
    "Host",
    "HostPhase",
    "HostSpec",
    "HostStatus",
    "LabelSelector",
    "Network",
    "NetworkMode",
    "NetworkSpec",
    "ObjectMeta",
    "ObjectStatus",
    "PoolType",
    "ReferenceProblem",
    "Resource",
    "RunStrategy",
    "SchedulingPolicy",
    "SchedulingPolicySpec",
    "Snapshot",
    "SnapshotSpec",
    "StoragePool",
    "StoragePoolSpec",
    "Template",
    "TemplateSpec",
    "VMPhase",
    "VirtualMachine",
    "VirtualMachineSpec",
    "VirtualMachineStatus",
    "Volume",
    "VolumeFormat",
    "VolumeSpec",
    "check_references",
    "format_bytes",
    "merge_template",
    "parse_bytes",
    "resolve_kind",
]
