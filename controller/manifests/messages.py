"""Pydantic errors -> sentences a person can act on, naming what was expected and found."""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

from pydantic import BaseModel

from controller.manifests.result import Loc


def show(value: Any) -> str:
    """Return a value as a person would write it in a manifest: strings in double quotes."""
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return str(value)


def _unwrap(annotation: Any) -> list[Any]:
    """Return the model-bearing types inside an annotation (Optional, Annotated, list, dict)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for arg in typing.get_args(annotation) for t in _unwrap(arg)]
    return [annotation]


def _model_at(model: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """Return the model class found at `loc` under `model`, or None."""
    current: Any = model
    for seg in loc:
        candidates = _unwrap(current)
        current = None
        for cand in candidates:
            origin = typing.get_origin(cand)
            if isinstance(seg, int) and origin is list:
                current = typing.get_args(cand)[0]
            elif isinstance(seg, str) and origin is dict:
                current = typing.get_args(cand)[1]
            elif isinstance(seg, str) and isinstance(cand, type) and issubclass(cand, BaseModel):
                for name, info in cand.model_fields.items():
                    if (info.alias or name) == seg:
                        current = info.annotation
            if current is not None:
                break
        if current is None:
            return None
    for cand in _unwrap(current):
        if isinstance(cand, type) and issubclass(cand, BaseModel):
            return cand
    return None


def _allowed_fields(model: type[BaseModel], parent: Loc) -> list[str]:
    found = _model_at(model, parent)
    if found is None:
        return []
    return [info.alias or name for name, info in found.model_fields.items()]


def describe_error(error: Any, model: type[BaseModel]) -> str:
    """Return a pydantic error as a sentence a person can act on, with what was found."""
    type_ = error["type"]
    loc = error["loc"]
    value = error.get("input")
    if type_ == "missing":
        return "required field is missing"
    if type_ == "extra_forbidden":
        allowed = _allowed_fields(model, loc[:-1])
        message = "unknown field"
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        if close:
            message += f'; did you mean "{close[0]}"?'
        if allowed:
            message += f" (allowed: {', '.join(allowed)})"
        return message
    if type_ in ("value_error", "assertion_error") and "error" in error.get("ctx", {}):
        return str(error["ctx"]["error"])
    if type_ in ("model_type", "model_attributes_type", "dict_type"):
        return f"expected a mapping, got {show(value)}"
    if type_ == "list_type":
        return f"expected a list, got {show(value)}"
    message = error["msg"]
    if message.startswith("Input should be "):
        message = "expected " + message.removeprefix("Input should be ")
    return f"{message[:1].lower()}{message[1:]}, got {show(value)}"
