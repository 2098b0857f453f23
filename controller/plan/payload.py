"""An action's payload kept as the wire model it stands for, dumped only when read."""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, KeysView, Mapping, ValuesView
from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


class ModelPayload(Mapping[str, Any]):
    """The JSON form of a wire model (`model.model_dump(mode="json")`), made when read.

    A DefineVM action's payload is its resolved DomainSpec; the planner already holds
    that model, so a plan defining 10,000 domains keeps no second copy of each as a
    dict, and the executor sends the model as it is. Equal to any mapping of the same
    JSON.
    """

    __slots__ = ("model",)

    def __init__(self, model: BaseModel) -> None:
        self.model = model

    def dump(self) -> dict[str, Any]:
        """Return the payload as a new dict."""
        return self.model.model_dump(mode="json")

    def __getitem__(self, key: str) -> Any:
        return self.dump()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.dump())

    def __len__(self) -> int:
        return len(type(self.model).model_fields)

    def keys(self) -> KeysView[str]:
        return self.dump().keys()

    def items(self) -> ItemsView[str, Any]:
        return self.dump().items()

    def values(self) -> ValuesView[Any]:
        return self.dump().values()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ModelPayload):
            return self.model == other.model
        return isinstance(other, Mapping) and self.dump() == dict(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ModelPayload({self.model!r})"


def payload_model(payload: Mapping[str, Any], model: type[M]) -> M:
    """Return `payload` as `model`: its own model when it holds one, else validated."""
    if isinstance(payload, ModelPayload) and isinstance(payload.model, model):
        return payload.model
    return model.model_validate(payload)
