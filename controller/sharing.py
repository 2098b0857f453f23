"""Share what many models held at once repeat, so a fleet's worth of them costs less memory.

A pydantic model remembers which fields its input set (`model_fields_set`, read by
`exclude_unset`) in a set of its own: about 2 KB for a model of 20-odd fields, more
than its values take. The controller holds several such models per VM (the observed
domain, the resolved DomainSpec, the merged VM spec), all with every field set. Such a
model can share one set per class: pydantic adds a field's name to the set on
assignment, which changes nothing when every name is already in it, and `model_copy`
copies the set before adding to it. A model with only some fields set keeps its own.

Strings parsed from JSON are new objects each time, so a host state repeats "qcow2",
"virtio" or a pool's name once per domain; `share_strings` makes equal short strings
one (interned) object.
"""

from __future__ import annotations

import sys
from typing import Any

from pydantic import BaseModel

_CONTAINERS = (BaseModel, list, tuple, dict)
SHARED_STRING_MAX = 32
"""Strings up to this many characters are interned: the repeated ones (formats, buses,
states, pool and network names) are short, and longer ones (UUIDs, paths) are mostly
unique, where interning saves nothing."""
_ALL_FIELDS: dict[type[BaseModel], set[str]] = {}


def _all_fields(cls: type[BaseModel]) -> set[str]:
    names = _ALL_FIELDS.get(cls)
    if names is None:
        names = _ALL_FIELDS.setdefault(cls, set(cls.model_fields))
    return names


def share_field_sets(model: BaseModel) -> None:
    """Make `model` and the models it holds (in fields, lists, tuples and dict values)
    share their class's set of field names wherever every field was set."""
    stack: list[Any] = [model]
    while stack:
        item = stack.pop()
        if isinstance(item, BaseModel):
            names = _all_fields(type(item))
            own = item.__pydantic_fields_set__
            if own is not names and len(own) == len(names) and own == names:
                object.__setattr__(item, "__pydantic_fields_set__", names)
            stack.extend(v for v in item.__dict__.values() if isinstance(v, _CONTAINERS))
        elif isinstance(item, list | tuple):
            stack.extend(v for v in item if isinstance(v, _CONTAINERS))
        elif isinstance(item, dict):
            stack.extend(v for v in item.values() if isinstance(v, _CONTAINERS))


def share_strings(model: BaseModel) -> None:
    """Replace every string of up to SHARED_STRING_MAX characters held in `model`'s fields,
    and in the models, lists and dict values they hold, with its interned copy."""
    stack: list[Any] = [model]
    while stack:
        item = stack.pop()
        values = item.__dict__ if isinstance(item, BaseModel) else item
        if isinstance(values, dict | list):
            slots = values.items() if isinstance(values, dict) else enumerate(values)
            for key, value in slots:
                if type(value) is str:
                    if len(value) <= SHARED_STRING_MAX:
                        values[key] = sys.intern(value)  # same key: no resize mid-iteration
                elif isinstance(value, _CONTAINERS):
                    stack.append(value)
        elif isinstance(values, tuple):
            stack.extend(v for v in values if isinstance(v, _CONTAINERS))
