"""The Kubernetes operator (kopf): Corral custom resources as a source, status written back."""

from controller.kube.convert import (
    CustomResourceInvalid,
    resource_from_cr,
    source_for,
    status_for_cr,
)
from controller.kube.operator import CorralOperator, build_registry, run_operator

__all__ = [
    "CorralOperator",
    "CustomResourceInvalid",
    "build_registry",
    "resource_from_cr",
    "run_operator",
    "source_for",
    "status_for_cr",
]
