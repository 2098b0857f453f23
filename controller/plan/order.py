"""Waves and the order of actions inside a plan.

A wave starts only after the earlier waves succeeded for the objects it depends on:
what a VM needs (networks, pools, volumes) comes before its definition, a definition
before a start, a stop before an undefine, an undefine before deleting what the VM used.
Migrations come last, in their own wave, once their target has what the VM needs.
Inside a wave the order is fixed (type, then target, then host), so equal inputs give
an equal plan.
"""

from __future__ import annotations

from controller.plan.model import Action, ActionType

WAVES: dict[ActionType, int] = {
    ActionType.FENCE_HOST: 0,
    ActionType.CANCEL_MIGRATION: 0,
    ActionType.DESTROY_VM: 0,
    ActionType.STOP_VM: 0,
    ActionType.DEFINE_NETWORK: 0,
    ActionType.DEFINE_POOL: 0,
    ActionType.START_NETWORK: 1,
    ActionType.CREATE_VOLUME: 1,
    ActionType.RESIZE_VOLUME: 1,
    ActionType.UNDEFINE_VM: 1,
    ActionType.DEFINE_VM: 2,
    ActionType.DELETE_VOLUME: 2,
    ActionType.START_VM: 3,
    ActionType.DELETE_POOL: 3,
    ActionType.DELETE_NETWORK: 3,
    ActionType.CREATE_SNAPSHOT: 3,
    ActionType.DELETE_SNAPSHOT: 0,
    ActionType.MIGRATE_VM: 4,
}
"""The wave of each action type; see the module docstring for why."""

_TYPE_RANK = {t: i for i, t in enumerate(ActionType)}


def sort_key(action: Action) -> tuple[int, int, str, str, str]:
    """Return the position of an action in a plan: wave, type, target, host."""
    return (
        action.wave,
        _TYPE_RANK[action.type],
        action.target[0],
        action.target[1],
        action.host or "",
    )


def order_actions(actions: list[Action]) -> tuple[Action, ...]:
    """Return the actions in plan order."""
    return tuple(sorted(actions, key=sort_key))
