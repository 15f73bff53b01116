"""TinyPersonFactory: TinyTroupe's persona factory, with populations sampled in code.

``TinyPersonFactory(context)`` writes one-off people (``generate_person``, ``generate_people``);
given a :class:`PopulationSpec` and a size (or a free-form demography through
``create_factory_from_demography``) it first samples the whole population in code and then hands
its people out in order, so the people generated always match the spec's marginals. Names are
unique across everything one factory generates, and near-duplicates are rewritten.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..agent import TinyPerson
from ..config import Config
from ..errors import SpecError
from ..llm import LLMGateway, default_gateway, loop
from ..population import PopulationSpec, SampledPerson, load_spec, sample_population
from .demography import aspec_from_demography, read_demography
from .generation import GeneratedPersona, GenerationSettings, agenerate_shard

if TYPE_CHECKING:
    from ..profiling import PopulationProfile

logger = logging.getLogger("troupe.factory")


class TinyPersonFactory:
    """Generates :class:`TinyPerson` s for a context, optionally following a population spec."""

    def __init__(
        self,
        context: str | None = None,
        *,
        spec: "PopulationSpec | str | Path | dict[str, Any] | None" = None,
        population_size: int | None = None,
        seed: int = 0,
        gateway: LLMGateway | None = None,
        config: Config | None = None,
        max_attempts: int = 3,
        max_rounds: int = 3,
        near_duplicate_threshold: float = 0.8,
    ) -> None:
        self.spec = load_spec(spec) if spec is not None else None
        if self.spec is not None and population_size is None:
            raise SpecError("population_size: a factory with a population spec needs the population's size; pass population_size=N")
        self.context = context if context is not None else (self.spec.context if self.spec else "")
        self.population_size = population_size
        self.seed = seed
        self._gateway = gateway
        self._config = config
        self._limits = {"max_attempts": max_attempts, "max_rounds": max_rounds, "near_duplicate_threshold": near_duplicate_threshold}
        self._sampled = sample_population(self.spec, population_size, seed) if self.spec is not None else None  # type: ignore[arg-type]
        self._lock = threading.Lock()
        self._reserved = 0
        self.generated: list[GeneratedPersona] = []  # every person this factory wrote, in order
        self.spec_path: Path | None = None  # where a spec derived from a demography was written

    # ----- TinyTroupe's constructors -----

    @classmethod
    def create_factory_from_demography(
        cls,
        demography_description_or_file_path: "str | Path | dict[str, Any]",
        population_size: int,
        additional_demographic_specification: str | None = None,
        context: str | None = None,
        *,
        seed: int = 0,
        gateway: LLMGateway | None = None,
        config: Config | None = None,
        spec_path: "str | Path | None" = None,
        **limits: Any,
    ) -> "TinyPersonFactory":
        """A factory for population_size people of a free-form demography (e.g. usa.json).

        One cached LLM call derives a structured spec, written to spec_path (default:
        ``<datasets root>/populations/<name>.spec.yaml``) to read and edit; sampling is in code.
        """
        if population_size is None or population_size < 1:
            raise SpecError("population_size: give how many people to sample, e.g. population_size=100")
        gateway = gateway or (LLMGateway(config) if config is not None else default_gateway())
        _, source = read_demography(demography_description_or_file_path)
        if spec_path is None:
            stem = Path(source).stem if source != "demography" else "demography"
            spec_path = Path(gateway.config.datasets.root) / "populations" / f"{stem}.spec.yaml"
        spec = loop.run_sync(
            aspec_from_demography(
                demography_description_or_file_path, gateway, context=context,
                additional=additional_demographic_specification, out=spec_path,
            )
        )
        logger.info("population spec derived from %s written to %s", source, spec_path)
        factory = cls(context, spec=spec, population_size=population_size, seed=seed, gateway=gateway, **limits)
        factory.spec_path = Path(spec_path)
        return factory

    # ----- configuration -----

    @property
    def gateway(self) -> LLMGateway:
        if self._gateway is None:
            self._gateway = LLMGateway(self._config) if self._config is not None else default_gateway()
        return self._gateway

    @property
    def remaining(self) -> int | None:
        """People of the sampled population not yet generated (None without a spec)."""
        return None if self._sampled is None else len(self._sampled) - self._reserved

    def _take(self, count: int | None) -> list[SampledPerson]:
        with self._lock:
            if self._sampled is None:
                if count is None or count < 1:
                    raise SpecError("number_of_people: give how many people to generate, e.g. generate_people(10)")
                people = [SampledPerson(index=self._reserved + i) for i in range(count)]
            else:
                left = len(self._sampled) - self._reserved
                count = left if count is None else count
                if count > left:
                    raise SpecError(
                        f"number_of_people: {count} asked, but only {left} of the population's {len(self._sampled)} "
                        "people are left; ask for fewer or make a factory with a larger population_size"
                    )
                people = self._sampled[self._reserved : self._reserved + count]
            self._reserved += count
            return people

    def _settings(self, particularities: str | None, temperature: float | None, attempts: int | None) -> GenerationSettings:
        limits = {**self._limits, **({"max_attempts": attempts} if attempts is not None else {})}
        return GenerationSettings(
            context=self.context, particularities=particularities, total=self.population_size, temperature=temperature, **limits
        )

    # ----- TinyTroupe's API -----

    async def agenerate_people(
        self,
        number_of_people: int | None = None,
        agent_particularities: str | None = None,
        temperature: float | None = None,
        attempts: int | None = None,
        post_processing_func: Callable[[TinyPerson], Any] | None = None,
    ) -> list[TinyPerson]:
        """Write number_of_people people concurrently (all remaining ones of a spec when None).

        ``temperature`` defaults to ``[llm] temperature``; ``attempts`` bounds the drafts per person
        spent on meeting its sampled attributes; ``post_processing_func`` is called on each person.
        """
        people = self._take(number_of_people)
        settings = self._settings(agent_particularities, temperature, attempts)
        rows = await agenerate_shard(people, self.gateway, settings, existing=list(self.generated))
        self.generated.extend(rows)
        persons = [TinyPerson(persona=row.persona, gateway=self.gateway) for row in rows]
        if post_processing_func is not None:
            for person in persons:
                post_processing_func(person)
        return persons

    def generate_people(
        self,
        number_of_people: int | None = None,
        agent_particularities: str | None = None,
        temperature: float | None = None,
        attempts: int | None = None,
        post_processing_func: Callable[[TinyPerson], Any] | None = None,
        parallelize: bool = True,
        verbose: bool = False,
    ) -> list[TinyPerson]:
        """TinyTroupe's ``generate_people``. The calls always run concurrently through the gateway,
        whose limiter sets the pace, so ``parallelize`` is accepted and has no effect."""
        people = loop.run_sync(self.agenerate_people(number_of_people, agent_particularities, temperature, attempts, post_processing_func))
        if verbose:
            for person in people:
                print(person.minibio())
        return people

    def generate_person(
        self,
        agent_particularities: str | None = None,
        temperature: float | None = None,
        attempts: int | None = None,
        post_processing_func: Callable[[TinyPerson], Any] | None = None,
    ) -> TinyPerson:
        """TinyTroupe's ``generate_person``: one person (the next one of the population, with a spec)."""
        return self.generate_people(1, agent_particularities, temperature, attempts, post_processing_func)[0]

    # ----- reporting -----

    def profile(self) -> "PopulationProfile":
        """Target vs sampled vs achieved per dimension, and the near-duplicate rate, of the people generated so far."""
        from ..profiling import profile

        if self.spec is None:
            raise SpecError("profile: this factory has no population spec; make it with spec=... or create_factory_from_demography")
        return profile(self.generated, self.spec, self._limits["near_duplicate_threshold"])
