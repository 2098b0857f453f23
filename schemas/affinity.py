"""AffinityGroup: VM-VM and VM-host affinity and anti-affinity, hard or soft."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field, model_validator

from schemas.meta import CorralModel, LabelSelector, Name, ObjectStatus, Resource


class AffinityPolarity(StrEnum):
    POSITIVE = "positive"  # together (VM-VM) / on these hosts (VM-host)
    NEGATIVE = "negative"  # apart / not on these hosts


class AffinityEnforcement(StrEnum):
    HARD = "hard"  # a filter: never violated, the VM stays pending instead
    SOFT = "soft"  # a weight: preferred, violated when nothing else fits


class AffinityRule(CorralModel):
    polarity: AffinityPolarity
    enforcement: AffinityEnforcement = AffinityEnforcement.HARD


class AffinityGroupSpec(CorralModel):
    """Members by name and/or selector; a VM rule, a host rule, or both."""

    vms: list[Name] = Field(default_factory=list)
    vm_selector: LabelSelector | None = None
    hosts: list[Name] = Field(default_factory=list)
    host_selector: LabelSelector | None = None
    vm_rule: AffinityRule | None = None
    host_rule: AffinityRule | None = None

    @model_validator(mode="after")
    def _rules(self) -> AffinityGroupSpec:
        if not (self.vm_rule or self.host_rule):
            raise ValueError("set vmRule, hostRule or both: a group without a rule does nothing")
        if not (self.vms or self.vm_selector):
            raise ValueError("set vms or vmSelector: the group has no members")
        if self.host_rule and not (self.hosts or self.host_selector):
            raise ValueError("hostRule needs hosts or hostSelector")
        return self


class AffinityGroupStatus(ObjectStatus):
    members: list[str] = Field(default_factory=list)
    violations: list[str] = Field(default_factory=list)


class AffinityGroup(Resource[AffinityGroupSpec, AffinityGroupStatus]):
    kind: Literal["AffinityGroup"] = "AffinityGroup"
