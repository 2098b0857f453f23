"""Weights: soft preferences scored 0..1 per host and combined by their factors.

Each weight scores every host between 0 and 1; the host's total is the
factor-weighted mean, total = sum(factor_w x score_w) / sum(factor_w), so a total is
always 0..1 and a factor means "this preference counts N times as much". A weight
that says nothing about this VM (SoftAffinity for a VM in no soft group) is left out
of both sums instead of adding a constant.

- Spread: 1 - the host's dominant-resource utilisation after placing the VM
  (even distribution: prefer the least allocated host).
- Pack: that utilisation itself (power saving: prefer the fullest host that fits).
- SoftAffinity: the mean of the VM's soft rules, each 0..1 (see `soft_rule_scores`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from controller.scheduler.fleet import Fleet
from controller.scheduler.model import VMRequest
from schemas.policy import WeightName


@dataclass(frozen=True)
class Scores:
    """Every host's normalised total and the per-weight scores it was made of."""

    total: np.ndarray
    parts: tuple[tuple[WeightName, np.ndarray], ...]


def utilisation_after(
    fleet: Fleet, cpu_used: np.ndarray, mem_used: np.ndarray, vm: VMRequest
) -> np.ndarray:
    """Return each host's dominant-resource utilisation if the VM were added, clipped 0..1."""
    cpu = (cpu_used + vm.cpu_milli) * fleet.cpu_scale
    mem = (mem_used + fleet.memory_need(vm)) * fleet.mem_scale
    return np.clip(np.maximum(cpu, mem, out=cpu), 0.0, 1.0, out=cpu)


def score_hosts(
    fleet: Fleet,
    vm: VMRequest,
    cpu_used: np.ndarray,
    mem_used: np.ndarray,
    soft_scores: Sequence[np.ndarray],
) -> Scores:
    """Return the normalised score of every host for the VM (filters are not applied here)."""
    util = utilisation_after(fleet, cpu_used, mem_used, vm)
    spread = 1.0 - util
    parts: list[tuple[WeightName, np.ndarray]] = [
        (WeightName.SPREAD, spread),
        (WeightName.PACK, util),
    ]
    soft = None
    if soft_scores:
        soft = soft_scores[0] if len(soft_scores) == 1 else np.mean(soft_scores, axis=0)
        parts.append((WeightName.SOFT_AFFINITY, soft))
    uniform = fleet.uniform_weight
    if uniform is not None:
        total = _uniform_total(uniform, spread, util, soft, fleet.size)
    else:
        numerator = fleet.weight[WeightName.SPREAD] * spread + fleet.weight[WeightName.PACK] * util
        denominator = fleet.weight[WeightName.SPREAD] + fleet.weight[WeightName.PACK]
        if soft is not None:
            numerator = numerator + fleet.weight[WeightName.SOFT_AFFINITY] * soft
            denominator = denominator + fleet.weight[WeightName.SOFT_AFFINITY]
        safe = np.where(denominator > 0, denominator, 1.0)
        total = np.where(denominator > 0, numerator / safe, 0.0)
    return Scores(total=total, parts=tuple(parts))


def _uniform_total(
    factor: dict[WeightName, float],
    spread: np.ndarray,
    util: np.ndarray,
    soft: np.ndarray | None,
    size: int,
) -> np.ndarray:
    """The same sum as in score_hosts when every host has the same factors (scalars)."""
    terms = [(factor[WeightName.SPREAD], spread), (factor[WeightName.PACK], util)]
    if soft is not None:
        terms.append((factor[WeightName.SOFT_AFFINITY], soft))
    terms = [(f, values) for f, values in terms if f > 0]
    denominator = sum(f for f, _ in terms)
    if not terms:
        return np.zeros(size)
    total = terms[0][1] * (terms[0][0] / denominator)
    for f, values in terms[1:]:
        total += values * (f / denominator)
    return total


def describe_score(fleet: Fleet, scores: Scores, i: int) -> str:
    """Return "score 0.83 (Spread 0.80x1, SoftAffinity 1.00x5)" for host i."""
    terms = [
        f"{name.value} {values[i]:.2f}x{int(fleet.weight[name][i])}"
        for name, values in scores.parts
        if fleet.weight[name][i] > 0
    ]
    detail = f" ({', '.join(terms)})" if terms else ""
    return f"score {scores.total[i]:.2f}{detail}"
