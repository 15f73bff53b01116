"""TinyTroupe's ``ResultsExtractor``: the same methods, arguments and dict results, typed underneath.

``fields`` may be TinyTroupe's list of names (each becomes a text field, its ``fields_hints``
entry its description) or a mapping of names to :class:`FieldSpec` (or dicts), which adds
``choice``, bounded numbers and lists. Each method is a thin synchronous wrapper over the async
one beside it (``a...``), which a running event loop can await; agents of one call are extracted
concurrently through the gateway.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..llm import default_gateway, loop
from .core import DEFAULT_HISTORY_TOKENS, aextract_values
from .fields import FieldSpec

if TYPE_CHECKING:
    from ..agent import TinyPerson
    from ..environment import TinyWorld
    from ..llm import LLMGateway

Fields = Sequence[str] | Mapping[str, FieldSpec | Mapping[str, Any]] | None

AGENT_OBJECTIVE = "The main points present in the agent's interactions history."
WORLD_OBJECTIVE = "The main points that can be derived from the agents conversations and actions."


def typed_fields(fields: Fields, hints: Mapping[str, str] | None) -> dict[str, FieldSpec] | None:
    """TinyTroupe's (fields, fields_hints) as typed field specs; None lets the model name the fields."""
    if fields is None:
        return None
    hints = hints or {}
    if isinstance(fields, Mapping):
        specs = {name: spec if isinstance(spec, FieldSpec) else FieldSpec.model_validate(spec) for name, spec in fields.items()}
        return {
            name: spec.model_copy(update={"description": hints[name]}) if name in hints and not spec.description else spec
            for name, spec in specs.items()
        }
    return {name: FieldSpec(type="str", description=hints.get(name, "")) for name in fields}


class ResultsExtractor:
    """Extracts results (dicts) from agents and worlds; the last results are kept, as in TinyTroupe."""

    def __init__(
        self,
        extraction_objective: str = AGENT_OBJECTIVE,
        situation: str = "",
        fields: Fields = None,
        fields_hints: Mapping[str, str] | None = None,
        verbose: bool = False,
        *,
        gateway: "LLMGateway | None" = None,
        history_tokens: int | None = DEFAULT_HISTORY_TOKENS,
    ) -> None:
        self.default_extraction_objective = extraction_objective
        self.default_situation = situation
        self.default_fields = fields
        self.default_fields_hints = fields_hints
        self.default_verbose = verbose
        self.gateway = gateway
        self.history_tokens = history_tokens
        self.agent_extraction: dict[str, dict[str, Any] | None] = {}
        self.world_extraction: dict[str, dict[str, Any] | None] = {}

    # ----- TinyTroupe's synchronous API -----

    def extract_results_from_agents(
        self,
        agents: Sequence["TinyPerson"],
        extraction_objective: str | None = None,
        situation: str | None = None,
        fields: Fields = None,
        fields_hints: Mapping[str, str] | None = None,
        verbose: bool | None = None,
    ) -> list[dict[str, Any]]:
        """One dict per agent, in the order given."""
        return loop.run_sync(
            self.aextract_results_from_agents(agents, extraction_objective, situation, fields, fields_hints, verbose)
        )

    def extract_results_from_agent(
        self,
        tinyperson: "TinyPerson",
        extraction_objective: str | None = None,
        situation: str | None = None,
        fields: Fields = None,
        fields_hints: Mapping[str, str] | None = None,
        verbose: bool | None = None,
    ) -> dict[str, Any]:
        return loop.run_sync(
            self.aextract_results_from_agent(tinyperson, extraction_objective, situation, fields, fields_hints, verbose)
        )

    def extract_results_from_world(
        self,
        tinyworld: "TinyWorld",
        extraction_objective: str | None = None,
        situation: str | None = None,
        fields: Fields = None,
        fields_hints: Mapping[str, str] | None = None,
        verbose: bool | None = None,
    ) -> dict[str, Any]:
        """One dict for the whole world, read from its event log."""
        return loop.run_sync(
            self.aextract_results_from_world(tinyworld, extraction_objective, situation, fields, fields_hints, verbose)
        )

    def save_as_json(self, filename: str | os.PathLike[str], verbose: bool = False) -> None:
        with open(filename, "w", encoding="utf-8") as handle:
            json.dump({"agent_extractions": self.agent_extraction, "world_extraction": self.world_extraction}, handle, indent=4)
        if verbose:
            print(f"Saved extraction results to {filename}")

    # ----- async core -----

    async def aextract_results_from_agents(
        self,
        agents: Sequence["TinyPerson"],
        extraction_objective: str | None = None,
        situation: str | None = None,
        fields: Fields = None,
        fields_hints: Mapping[str, str] | None = None,
        verbose: bool | None = None,
    ) -> list[dict[str, Any]]:
        return list(
            await asyncio.gather(
                *(
                    self.aextract_results_from_agent(a, extraction_objective, situation, fields, fields_hints, verbose)
                    for a in agents
                )
            )
        )

    async def aextract_results_from_agent(
        self,
        tinyperson: "TinyPerson",
        extraction_objective: str | None = None,
        situation: str | None = None,
        fields: Fields = None,
        fields_hints: Mapping[str, str] | None = None,
        verbose: bool | None = None,
    ) -> dict[str, Any]:
        objective, situation, specs, verbose = self._defaults(extraction_objective, situation, fields, fields_hints, verbose)
        values = await self._extract(
            self.gateway or tinyperson.gateway, objective, tinyperson.name, list(tinyperson.state.episodes), specs, situation, verbose
        )
        self.agent_extraction[tinyperson.name] = values
        return values

    async def aextract_results_from_world(
        self,
        tinyworld: "TinyWorld",
        extraction_objective: str | None = None,
        situation: str | None = None,
        fields: Fields = None,
        fields_hints: Mapping[str, str] | None = None,
        verbose: bool | None = None,
    ) -> dict[str, Any]:
        if extraction_objective is None and self.default_extraction_objective == AGENT_OBJECTIVE:
            extraction_objective = WORLD_OBJECTIVE
        objective, situation, specs, verbose = self._defaults(extraction_objective, situation, fields, fields_hints, verbose)
        values = await self._extract(
            self.gateway or tinyworld.gateway, objective, "", list(tinyworld.state.events), specs, situation, verbose
        )
        self.world_extraction[tinyworld.name] = values
        return values

    async def _extract(
        self, gateway: "LLMGateway | None", objective: str, subject: str, events: list[Any],
        specs: dict[str, FieldSpec] | None, situation: str, verbose: bool,
    ) -> dict[str, Any]:
        values, key = await aextract_values(
            gateway or default_gateway(), objective, subject, events, specs,
            situation=situation, history_tokens=self.history_tokens,
        )
        if verbose:
            print(f"Extraction for {subject or 'the world'} (call {key[:12]}): {values}")
        return values

    def _defaults(
        self, objective: str | None, situation: str | None, fields: Fields, hints: Mapping[str, str] | None, verbose: bool | None
    ) -> tuple[str, str, dict[str, FieldSpec] | None, bool]:
        return (
            objective if objective is not None else self.default_extraction_objective,
            situation if situation is not None else self.default_situation,
            typed_fields(fields if fields is not None else self.default_fields,
                         hints if hints is not None else self.default_fields_hints),
            verbose if verbose is not None else self.default_verbose,
        )
