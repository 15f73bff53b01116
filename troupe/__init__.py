"""troupe: simulate people with LLMs, TinyTroupe's API, as cached and queryable dataflows.

Importing troupe is cheap: the heavy parts (the openai client, the agents, the worlds) load on
first use of the name that needs them. troupe never imports Prefect; tasks/ and flows/ do.
"""

from __future__ import annotations

from troupe._lazy import lazy_getattr

__version__ = "0.1.0"

_LAZY = {
    "Config": "troupe.config",
    "load_config": "troupe.config",
    "LLMGateway": "troupe.llm",
    "default_gateway": "troupe.llm",
    "set_default_gateway": "troupe.llm",
    "FileCallCache": "troupe.cache",
    "Persona": "troupe.agent.persona",
    "TinyPerson": "troupe.agent",
    "TinyWorld": "troupe.environment",
    "TinySocialNetwork": "troupe.environment",
    "TinyPersonFactory": "troupe.factory",
    "Survey": "troupe.survey",
}

__all__ = sorted(_LAZY)

__getattr__ = lazy_getattr(globals(), _LAZY)
