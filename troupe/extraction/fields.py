"""What an extraction asks for: its objective and typed fields, and the reply model built from them.

A field's type is also its contract with the LLM: the reply model (and so the JSON schema sent as
structured output) carries an enum for a ``choice``, bounds for an ``int`` or ``float`` and a
length cap on every text, so a backend that honours the schema can only answer within it, and
the gateway's validation rejects (and repairs) a reply that does not.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

FieldType = Literal["str", "int", "float", "bool", "list[str]", "choice", "list"]
TEXT_MAX = 400
LIST_MAX = 8
ENUM_RANGE_MAX = 21  # an integer range this small travels as an enum, which every structured-output mode keeps
ListItem = Annotated[str, Field(max_length=120)]

# How each field type is stored in the extractions dataset (troupe.datasets.schemas.FIELD_TYPES keys).
_STORAGE: dict[str, str] = {"choice": "str", "list": "list[str]"}


class FieldSpec(BaseModel):
    """One extracted field: its type, what it means, and for ``choice``/``list``/numbers its limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: FieldType = "str"
    description: str = ""
    options: tuple[str, ...] | None = Field(default=None, description="choice: the allowed answers; list: allowed items")
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "FieldSpec":
        if self.type == "choice" and (not self.options or len(self.options) < 2):
            raise ValueError("a choice field needs options: at least two, e.g. options: [yes, no, unsure]")
        if self.options is not None:
            if self.type not in ("choice", "list"):
                raise ValueError(f"options only apply to choice and list fields, not {self.type}")
            if len(set(self.options)) != len(self.options) or not all(o.strip() for o in self.options):
                raise ValueError("options must be distinct and non-empty")
        if (self.min is not None or self.max is not None) and self.type not in ("int", "float"):
            raise ValueError(f"min/max only apply to int and float fields, not {self.type}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) is above max ({self.max:g})")
        return self

    @property
    def storage_type(self) -> str:
        """The dataset column type this field is written as: ``choice`` is text, ``list`` is a list of text."""
        return _STORAGE.get(self.type, self.type)

    def hint(self) -> str:
        """The field's limits as the prompt states them, e.g. ``one of: a, b`` or ``1 to 7``."""
        if self.type == "choice":
            return "one of: " + ", ".join(self.options or ())
        if self.type == "list" and self.options:
            return "any of: " + ", ".join(self.options)
        if self.min is not None and self.max is not None:
            return f"{self.min:g} to {self.max:g}"
        if self.min is not None:
            return f"at least {self.min:g}"
        if self.max is not None:
            return f"at most {self.max:g}"
        return ""


class ExtractionSpec(BaseModel):
    """A scenario's extraction: an objective, per agent or per world, and its typed fields."""

    model_config = ConfigDict(extra="forbid")

    objective: str = Field(min_length=1)
    per: Literal["agent", "world"] = "agent"
    situation: str = ""
    fields: dict[str, FieldSpec] = Field(min_length=1)
    history_tokens: int = Field(default=3000, ge=200, description="history shown to the LLM, at most (estimated tokens)")

    def schema_model(self) -> type[BaseModel]:
        return fields_model(self.fields)


def fields_model(fields: dict[str, FieldSpec]) -> type[BaseModel]:
    """The pydantic reply model for fields (built once per distinct set of fields)."""
    return _schema_model(tuple(fields.items()))


@lru_cache(maxsize=64)
def _schema_model(fields: tuple[tuple[str, FieldSpec], ...]) -> type[BaseModel]:
    definitions: dict[str, Any] = {name: _definition(spec) for name, spec in fields}
    return create_model("Extraction", **definitions)


def _definition(spec: FieldSpec) -> tuple[Any, Any]:
    """(annotation, Field) for one field: the type carries the limits, so the JSON schema does too."""
    described = {"description": spec.description} if spec.description else {}
    if spec.type == "str":
        return str, Field(max_length=TEXT_MAX, **described)
    if spec.type == "choice":
        return Literal[spec.options], Field(**described)  # type: ignore[valid-type]
    if spec.type in ("list", "list[str]"):
        item: Any = Literal[spec.options] if spec.options else ListItem  # type: ignore[valid-type]
        return list[item], Field(max_length=LIST_MAX, **described)
    if spec.type in ("int", "float"):
        bounds = {k: v for k, v in (("ge", spec.min), ("le", spec.max)) if v is not None}
        kind: Any = int if spec.type == "int" else float
        if kind is int:  # an integer range never widens: 1.5 to 7.5 means 2 to 7
            bounds = {k: math.ceil(v) if k == "ge" else math.floor(v) for k, v in bounds.items()}
            if "ge" in bounds and "le" in bounds:
                return int_range(bounds["ge"], bounds["le"]), Field(**described)
        return kind, Field(**bounds, **described)
    return bool, Field(**described)


def int_range(low: int, high: int) -> Any:
    """The type of an integer from low to high: an enum when the range is small, else bounds.

    OpenAI's strict mode (as troupe.llm.structured sends it) drops ``minimum``/``maximum`` but
    keeps ``enum``, so a Likert point or a 1-10 score stays constrained at the source.
    """
    if high - low + 1 <= ENUM_RANGE_MAX:
        return Literal[tuple(range(low, high + 1))]  # type: ignore[valid-type]
    return Annotated[int, Field(ge=low, le=high)]
