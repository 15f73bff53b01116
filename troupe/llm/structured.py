"""Structured output: turning a pydantic model into what each backend accepts.

Backends differ. OpenAI and Azure take ``{"type": "json_schema", ...}``; llama.cpp's server
answers HTTP 500 to that form but takes ``{"type": "json_object", "schema": ...}`` and then
constrains decoding with a grammar; other servers only know plain JSON mode, where the schema has
to travel in the prompt. The mode is chosen per endpoint (``[llm] structured_output``).
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

StructuredMode = Literal["json_schema", "json_object_schema", "json_object"]


def resolve_mode(configured: str, api_type: str) -> StructuredMode:
    if configured != "auto":
        return configured  # type: ignore[return-value]
    return "json_object_schema" if api_type == "local" else "json_schema"


@lru_cache(maxsize=256)
def _schema_text(model: type[BaseModel]) -> str:
    return json.dumps(model.model_json_schema())


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema; built once per model (pydantic takes ~1 ms to build one), copied per call."""
    return json.loads(_schema_text(model))


# Keywords OpenAI's strict mode rejects or ignores; pydantic still enforces them on the reply.
_NOT_STRICT = {
    "maxLength", "minLength", "pattern", "format", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "multipleOf", "minItems", "maxItems", "default",
}


def _strict(schema: dict[str, Any]) -> dict[str, Any] | None:
    """OpenAI's strict form of schema, or None when it has optional fields (strict needs all required).

    Objects get ``additionalProperties: false``; unsupported keywords are dropped; ``const``
    becomes a one-value ``enum``.
    """
    strict = copy.deepcopy(schema)

    def visit(node: Any) -> bool:
        if not isinstance(node, dict):
            return True
        for keyword in _NOT_STRICT & node.keys():
            del node[keyword]
        if "const" in node:
            node["enum"] = [node.pop("const")]
        children: list[Any] = [node.get("items"), *node.get("anyOf", []), *node.get("oneOf", []), *node.get("allOf", [])]
        if "properties" in node:
            if set(node.get("required", [])) != set(node["properties"]):
                return False
            node["additionalProperties"] = False
            children.extend(node["properties"].values())
        children.extend(node.get("$defs", {}).values())
        return all(visit(child) for child in children)

    return strict if visit(strict) else None


def response_format(mode: StructuredMode, name: str, schema: dict[str, Any]) -> dict[str, Any]:
    if mode == "json_schema":
        strict = _strict(schema)
        return {
            "type": "json_schema",
            "json_schema": {"name": name[:64], "schema": strict or schema, "strict": strict is not None},
        }
    if mode == "json_object_schema":
        return {"type": "json_object", "schema": schema}
    return {"type": "json_object"}


def schema_instruction(schema: dict[str, Any]) -> str:
    """The system note that carries the schema in plain JSON mode."""
    return "Reply with one JSON object that follows this JSON schema exactly:\n" + json.dumps(schema, separators=(",", ":"))


def validate(model: type[BaseModel], text: str) -> tuple[BaseModel | None, str | None]:
    """The parsed reply, or the validation error in a form the model can act on."""
    try:
        data = _loads(_strip_fences(text))
    except json.JSONDecodeError as exc:
        return None, f"(root): not valid JSON ({exc})"
    try:
        return model.model_validate(data), None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors()[:8]
        )
        return None, problems


def _loads(text: str) -> Any:
    """Parse JSON, tolerating raw control characters inside strings (small models emit raw newlines)."""
    return json.loads(text, strict=False)


def repair_message(problems: str) -> str:
    return (
        "Your previous reply was not valid for the required JSON schema: "
        f"{problems}. Reply again with only the corrected JSON object."
    )


def _strip_fences(text: str) -> str:
    """Accept a JSON reply wrapped in a Markdown code fence, which some servers add in JSON mode."""
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.split("\n", 1)[1] if "\n" in stripped else ""
        stripped = stripped.rsplit("```", 1)[0]
    return stripped
