"""Persona factories and populations: TinyTroupe's TinyPersonFactory, with sampling in code.

Entry points for pipelines (one call per shard, no Prefect here):

* :func:`troupe.population.sample_population` -- the whole population's attributes (pure, seeded);
* :func:`agenerate_shard` -- write a shard of those people (concurrent calls through the gateway);
* :func:`adiversify` -- across shards: rewrite repeated names and near-duplicates;
* :func:`troupe.profiling.profile` -- target vs achieved per dimension, near-duplicate rate.
"""

from __future__ import annotations

from .demography import aspec_from_demography, spec_from_demography, write_spec
from .generation import (
    GeneratedPersona,
    GenerationSettings,
    Hints,
    adiversify,
    agenerate_person,
    agenerate_population,
    agenerate_shard,
)
from .tiny_person_factory import TinyPersonFactory

__all__ = [
    "GeneratedPersona",
    "GenerationSettings",
    "Hints",
    "TinyPersonFactory",
    "adiversify",
    "agenerate_person",
    "agenerate_population",
    "agenerate_shard",
    "aspec_from_demography",
    "spec_from_demography",
    "write_spec",
]
