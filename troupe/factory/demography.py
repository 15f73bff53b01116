"""From a free-form demography (TinyTroupe's population JSON) to a structured population spec.

TinyTroupe asks the LLM for the sampling dimensions and then for the whole sampling plan, and only
warns when the counts come out wrong. Here the LLM is asked once, with structured output, for the
dimensions and their shares; the call is cached by content like every other call, the result is
written out as a YAML spec the user can read and edit, and all sampling happens in code
(:func:`troupe.population.sample_population`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from .. import prompts
from ..atomic import write_atomic
from ..errors import SpecError
from ..llm import loop
from ..population import PopulationSpec, parse_spec

if TYPE_CHECKING:
    from ..llm import LLMGateway

_OPEN_BAND = re.compile(r"^\s*(\d+)\s*\+\s*$")
_CLOSED_BAND = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$")


class CategoryShare(BaseModel):
    value: str = Field(max_length=80)
    share: float = Field(ge=0)


class DimensionShares(BaseModel):
    name: str = Field(max_length=60)
    categories: list[CategoryShare] = Field(max_length=24)


class DemographySpec(BaseModel):
    """What the LLM returns: a name, a one-line context and independent dimensions with shares."""

    name: str = Field(max_length=80)
    context: str = Field(max_length=400)
    dimensions: list[DimensionShares] = Field(max_length=16)


def read_demography(source: "str | Path | dict[str, Any]") -> tuple[dict[str, Any], str]:
    """The demography as a dict (a file is read unchanged) and a label for messages."""
    if isinstance(source, dict):
        return source, "demography"
    path = Path(source)
    if not path.is_file():
        raise SpecError(f"{path}: no such demography file; check the path")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise SpecError(f"{path}: not valid JSON ({str(exc).splitlines()[0]}); fix the syntax") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: expected a JSON object describing the population; see troupe/examples/populations/usa.json")
    return data, str(path)


def _slug(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")


def _close_bands(shares: dict[str, float]) -> dict[str, float]:
    """Turn an open band "65+" into a closed one, as wide as the widest closed band of the dimension."""
    closed = [(_CLOSED_BAND.match(c)) for c in shares]
    widths = [int(m.group(2)) - int(m.group(1)) for m in closed if m]
    if not widths:
        return shares
    width = max(max(widths), 10)
    result: dict[str, float] = {}
    for category, share in shares.items():
        match = _OPEN_BAND.match(category)
        result[f"{match.group(1)}-{int(match.group(1)) + width}" if match else category] = share
    return result


def to_spec(reply: DemographySpec, source: str, context: str | None = None) -> PopulationSpec:
    """A valid spec from the LLM's reply: labels cleaned, repeats merged, shares normalised."""
    dimensions: dict[str, dict[str, float]] = {}
    for dimension in reply.dimensions:
        name = _slug(dimension.name)
        shares: dict[str, float] = {}
        for category in dimension.categories:
            label = " ".join(category.value.split())
            if label:
                shares[label] = shares.get(label, 0.0) + category.share
        shares = _close_bands(shares)
        total = sum(shares.values())
        if name and name not in dimensions and total > 0:
            dimensions[name] = {label: round(share / total, 4) for label, share in shares.items() if share > 0}
    if not dimensions:
        raise SpecError(f"{source}: the model derived no usable dimension from the demography; use a stronger model or write the spec by hand (docs/populations.md)")
    for name, shares in dimensions.items():  # rounding to 4 places may leave the sum a hair off 1
        top = max(shares, key=lambda c: shares[c])
        shares[top] = round(shares[top] + 1 - sum(shares.values()), 4)
    return parse_spec(
        {"name": reply.name.strip() or "population", "context": context if context is not None else reply.context, "dimensions": dimensions},
        f"{source} (as derived by the model)",
    )


async def aspec_from_demography(
    demography: "str | Path | dict[str, Any]",
    gateway: "LLMGateway",
    *,
    context: str | None = None,
    additional: str | None = None,
    out: "str | Path | None" = None,
) -> PopulationSpec:
    """One structured, cached LLM call turns a free-form demography into a spec; written to out if given."""
    data, source = read_demography(demography)
    messages = [
        {"role": "system", "content": prompts.render("demography_spec_system")},
        {
            "role": "user",
            "content": prompts.render(
                "demography_spec", context=context, additional=additional, demography=json.dumps(data, indent=2, ensure_ascii=False)
            ),
        },
    ]
    reply = await gateway.astructured(messages, DemographySpec, purpose="population:spec")
    spec = to_spec(reply.value, source, context)
    if out is not None:
        write_spec(spec, out, derived_from=source)
    return spec


def spec_from_demography(demography: "str | Path | dict[str, Any]", gateway: "LLMGateway", **kwargs: Any) -> PopulationSpec:
    """Sync form of :func:`aspec_from_demography`."""
    return loop.run_sync(aspec_from_demography(demography, gateway, **kwargs))


def write_spec(spec: PopulationSpec, path: "str | Path", derived_from: str | None = None) -> Path:
    """Write spec as YAML (atomically), with a note on where it came from so the user can edit it."""
    header = ""
    if derived_from:
        header = (
            f"# Population spec derived by the LLM from {derived_from}.\n"
            "# Edit it freely (shares, bands 'lo-hi', conditional dimensions), then pass this file as the spec.\n"
        )
    return write_atomic(path, header + spec.to_yaml())
