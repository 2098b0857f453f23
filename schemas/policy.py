"""SchedulingPolicy: filters, weights, balancer, overcommit and disruption budget."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Literal

from pydantic import Field, field_validator, model_validator

from schemas.meta import CorralModel, LabelSelector, ObjectStatus, Resource, quote


class FilterName(StrEnum):
    """Hard constraints; a host failing one is out, with the reason kept."""

    MAINTENANCE = "Maintenance"
    HOST_HEALTH = "HostHealth"
    HOST_SELECTOR = "HostSelector"
    CPU = "CPU"
    MEMORY = "Memory"
    NETWORK = "Network"
    STORAGE = "Storage"
    AFFINITY = "Affinity"


class WeightName(StrEnum):
    """Soft preferences; scores are summed with their factors, highest wins."""

    SPREAD = "Spread"  # even distribution: prefer the least loaded host
    PACK = "Pack"  # power saving: prefer the most loaded host that still fits
    SOFT_AFFINITY = "SoftAffinity"


class BalancerType(StrEnum):
    NONE = "None"
    EVEN_DISTRIBUTION = "EvenDistribution"
    POWER_SAVING = "PowerSaving"


class Weight(CorralModel):
    name: WeightName
    factor: int = Field(default=1, ge=1, le=100)


HOURS_RE = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]$")


class Balancer(CorralModel):
    """Moves running VMs to follow the policy; minimumBenefit stops flapping."""

    type: BalancerType = BalancerType.NONE
    high_utilization_percent: int = Field(default=80, ge=1, le=100)
    low_utilization_percent: int = Field(default=20, ge=0, le=99)
    minimum_benefit_percent: int = Field(default=10, ge=0, le=100)
    power_saving_hours: str | None = Field(default=None, description='e.g. "22:00-06:00" (UTC)')

    @field_validator("power_saving_hours")
    @classmethod
    def _hours(cls, value: str | None) -> str | None:
        if value is not None and not HOURS_RE.match(value):
            raise ValueError(f'expected hours like "22:00-06:00", got {quote(value)}')
        return value

    @model_validator(mode="after")
    def _thresholds(self) -> Balancer:
        if self.low_utilization_percent >= self.high_utilization_percent:
            raise ValueError("lowUtilizationPercent must be below highUtilizationPercent")
        return self


class Overcommit(CorralModel):
    """Allocatable = (capacity - reserved) x ratio; 1.0 means no overcommit."""

    cpu_ratio: float = Field(default=4.0, ge=1.0, le=64.0)
    memory_ratio: float = Field(default=1.0, ge=1.0, le=4.0)


class MemoryBalloon(CorralModel):
    """Memory overcommit by ballooning (oVirt's MOM) on the hosts the policy governs.

    When a host's free memory falls below `lowFreePercent` of its memory, the balloons of
    running VMs with guaranteedMemory below memory shrink towards guaranteedMemory (the
    largest headroom first, at most `stepPercent` of a VM's memory per adjustment); above
    `highFreePercent` they grow back towards memory. VMs need a balloon device (set
    maxMemory). With it enabled, the scheduler counts a VM's guaranteedMemory, not its
    memory, against the host.
    """

    enabled: bool = False
    low_free_percent: int = Field(default=10, ge=0, le=100)
    high_free_percent: int = Field(default=30, ge=0, le=100)
    step_percent: int = Field(default=10, ge=1, le=100)

    @model_validator(mode="after")
    def _marks(self) -> MemoryBalloon:
        if self.low_free_percent >= self.high_free_percent:
            raise ValueError("lowFreePercent must be below highFreePercent")
        return self


class DisruptionBudget(CorralModel):
    """How many live migrations may run at once, per host and in the whole fleet."""

    max_migrations_per_host: int = Field(default=2, ge=1, le=64)
    max_migrations_fleet: int = Field(default=4, ge=1, le=1024)


def _all_filters() -> list[FilterName]:
    return list(FilterName)


def _default_weights() -> list[Weight]:
    return [Weight(name=WeightName.SPREAD), Weight(name=WeightName.SOFT_AFFINITY, factor=5)]


class SchedulingPolicySpec(CorralModel):
    """The policy for the hosts its selector picks; a host picked by two is an error."""

    host_selector: LabelSelector = Field(default_factory=LabelSelector)
    filters: list[FilterName] = Field(default_factory=_all_filters)
    weights: list[Weight] = Field(default_factory=_default_weights)
    balancer: Balancer = Field(default_factory=Balancer)
    overcommit: Overcommit = Field(default_factory=Overcommit)
    memory_balloon: MemoryBalloon = Field(default_factory=MemoryBalloon)
    disruption_budget: DisruptionBudget = Field(default_factory=DisruptionBudget)
    ha_restart_margin_s: int = Field(default=2, ge=1, le=600)
    """Seconds after a host's etcd lease expired (its key gone) before its HA VMs restart
    elsewhere: a second belt over the agent's own fence margin, for the clocks' rates and
    the kill; at least 1."""

    @field_validator("filters")
    @classmethod
    def _no_duplicate_filters(cls, value: list[FilterName]) -> list[FilterName]:
        if len(set(value)) != len(value):
            raise ValueError("a filter is listed twice")
        return value


class SchedulingPolicyStatus(ObjectStatus):
    hosts: list[str] = Field(default_factory=list)
    empty_hosts: list[str] = Field(default_factory=list)


class SchedulingPolicy(Resource[SchedulingPolicySpec, SchedulingPolicyStatus]):
    kind: Literal["SchedulingPolicy"] = "SchedulingPolicy"
