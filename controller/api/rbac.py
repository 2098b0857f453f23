"""Who may do what: roles, verbs, the role -> verbs table, and label scopes.

Roles are cumulative: a viewer reads; an operator also writes objects and asks
for actions (migrate, drain, reconcile); an admin may also override a source's
ownership (?force=true). A token may carry a label scope: it then sees and writes
only objects whose labels match it, and anything outside is simply "not found".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from schemas.meta import LabelSelector, LabelSelectorOperator, LabelSelectorRequirement


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"


class Verb(StrEnum):
    """What a request does, as far as authorisation is concerned."""

    READ = "read"  # get, list, watch, status, events, plans, metrics
    WRITE = "write"  # create, replace, patch, delete
    ACTION = "action"  # migrate, drain, undrain, release, reconcile
    FORCE = "force"  # take an object over from its source (?force=true)


ROLE_VERBS: Mapping[Role, frozenset[Verb]] = {
    Role.VIEWER: frozenset({Verb.READ}),
    Role.OPERATOR: frozenset({Verb.READ, Verb.WRITE, Verb.ACTION}),
    Role.ADMIN: frozenset(Verb),
}


def allowed(role: Role, verb: Verb) -> bool:
    """Return whether `role` may perform `verb`."""
    return verb in ROLE_VERBS[role]


@dataclass(frozen=True)
class Identity:
    """The caller behind a token: its name (recorded on audit events), role and scope."""

    name: str
    role: Role
    scope: LabelSelector | None = None

    def may(self, verb: Verb) -> bool:
        return allowed(self.role, verb)

    def sees(self, labels: Mapping[str, str]) -> bool:
        """Return whether an object with `labels` lies within the token's scope."""
        return self.scope is None or self.scope.matches(dict(labels))


def restrict(selector: LabelSelector | None, scope: LabelSelector | None) -> LabelSelector | None:
    """Return a selector matching what both `selector` and `scope` match."""
    if scope is None:
        return selector
    scoped = [
        LabelSelectorRequirement(key=k, operator=LabelSelectorOperator.IN, values=[v])
        for k, v in scope.match_labels.items()
    ] + list(scope.match_expressions)
    if selector is None:
        return LabelSelector(match_expressions=scoped)
    return LabelSelector(
        match_labels=dict(selector.match_labels),
        match_expressions=[*selector.match_expressions, *scoped],
    )
