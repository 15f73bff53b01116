"""Reading a TinyTroupe ``config.ini``: its keys mapped onto troupe's sections, the rest noted.

A TinyTroupe user's config.ini has sections ``[OpenAI]``, ``[Simulation]``, ``[Cognition]``,
``[ActionGenerator]`` and ``[Logging]`` with upper-case keys. Each key troupe has an equivalent
for is translated (``[OpenAI] MODEL`` -> ``[llm] model``); each key it has none for is skipped
with a one-line note in the log saying why, so nothing is silently dropped. A value troupe cannot
honour at all (an API type it has no client for) stops with one line saying how to convert it.
"""

from __future__ import annotations

import logging
from typing import Callable, Mapping

from .errors import ConfigError

logger = logging.getLogger("troupe.config")

TINYTROUPE_SECTIONS = frozenset({"OpenAI", "Simulation", "Cognition", "ActionGenerator", "Logging"})

Layer = dict[tuple[str, str], str]
Convert = Callable[[str, Mapping[str, str]], Layer]


def _to(section: str, key: str) -> Convert:
    return lambda value, _: {(section, key): value.strip()}


def _api_type(value: str, keys: Mapping[str, str]) -> Layer:
    kind = value.strip().lower()
    if kind in ("openai", "azure"):
        return {("llm", "api_type"): kind}
    if kind == "ollama":  # Ollama is OpenAI-compatible: troupe talks to it as openai with a base_url
        return {("llm", "api_type"): "openai", ("llm", "base_url"): keys.get("BASE_URL", "").strip() or "http://localhost:11434/v1"}
    raise ConfigError(
        f"[OpenAI] API_TYPE = {value}: troupe has no {value} client; set [llm] api_type = openai and "
        "[llm] base_url to the OpenAI-compatible endpoint of your proxy (e.g. LiteLLM's) instead"
    )


def _concurrency(value: str, _: Mapping[str, str]) -> Layer:
    text = value.strip().upper()
    if text in ("0", "NONE", ""):
        logger.warning("config.ini [OpenAI] MAX_CONCURRENT_MODEL_CALLS = %s: troupe always bounds concurrency; keeping [llm] max_concurrency", value)
        return {}
    return {("llm", "max_concurrency"): text}


def _parallel_actions(value: str, _: Mapping[str, str]) -> Layer:
    return {("simulation", "step_mode"): "parallel" if value.strip().lower() in ("true", "1", "yes", "on") else "sequential"}


def _consolidation(value: str, _: Mapping[str, str]) -> Layer:
    if value.strip().lower() in ("false", "0", "no", "off"):
        return {("simulation", "consolidate_every"): "0"}
    logger.warning(
        "config.ini [Cognition] ENABLE_MEMORY_CONSOLIDATION = True: set [simulation] consolidate_every to the number of "
        "events between consolidations (troupe's default 0 means never)"
    )
    return {}


def _log_level(value: str, _: Mapping[str, str]) -> Layer:
    level = value.strip().upper()
    if level == "NONE":
        logger.warning("config.ini [Logging] LOGLEVEL = NONE: troupe keeps its default log level")
        return {}
    return {("logging", "level"): level}


def _quality_switch(name: str) -> Convert:
    """ENABLE_QUALITY_CHECK_FOR_X: collected into [simulation] quality_checks by :func:`_quality`."""
    return lambda value, _: {}


_QUALITY_KEYS = {
    "ENABLE_QUALITY_CHECK_FOR_PERSONA_ADHERENCE": "persona_adherence",
    "ENABLE_QUALITY_CHECK_FOR_SELFCONSISTENCY": "self_consistency",
    "ENABLE_QUALITY_CHECK_FOR_FLUENCY": "fluency",
    "ENABLE_QUALITY_CHECK_FOR_SUITABILITY": "suitability",
    "ENABLE_QUALITY_CHECK_FOR_SIMILARITY": "similarity",
}


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "1", "yes", "on")


def _quality(value: str, keys: Mapping[str, str]) -> Layer:
    if not _true(value):
        return {("simulation", "quality_checks"): ""}
    checks = [name for key, name in _QUALITY_KEYS.items() if _true(keys.get(key))]
    return {("simulation", "quality_checks"): ",".join(checks)}


MAPPED: dict[tuple[str, str], Convert] = {
    ("OpenAI", "API_TYPE"): _api_type,
    ("OpenAI", "BASE_URL"): lambda value, keys: {} if keys.get("API_TYPE", "").strip().lower() == "ollama" else {("llm", "base_url"): value.strip()},
    ("OpenAI", "MODEL"): _to("llm", "model"),
    ("OpenAI", "AZURE_API_VERSION"): _to("llm", "api_version"),
    ("OpenAI", "EMBEDDING_MODEL"): _to("llm", "embedding_model"),
    ("OpenAI", "MAX_TOKENS"): _to("llm", "max_tokens"),
    ("OpenAI", "MAX_COMPLETION_TOKENS"): _to("llm", "max_tokens"),
    ("OpenAI", "TEMPERATURE"): _to("llm", "temperature"),
    ("OpenAI", "TIMEOUT"): _to("llm", "timeout_s"),
    ("OpenAI", "MAX_ATTEMPTS"): _to("llm", "max_attempts"),
    ("OpenAI", "MAX_CONCURRENT_MODEL_CALLS"): _concurrency,
    ("OpenAI", "CACHE_API_CALLS"): _to("cache", "enabled"),
    ("Simulation", "PARALLEL_AGENT_ACTIONS"): _parallel_actions,
    ("Cognition", "ENABLE_MEMORY_CONSOLIDATION"): _consolidation,
    ("Cognition", "EPISODIC_MEMORY_FIXED_PREFIX_LENGTH"): _to("simulation", "episode_prefix"),
    ("Cognition", "EPISODIC_MEMORY_LOOKBACK_LENGTH"): _to("simulation", "episode_window"),
    ("ActionGenerator", "ENABLE_QUALITY_CHECKS"): _quality,
    ("ActionGenerator", "MAX_ATTEMPTS"): _to("simulation", "quality_max_attempts"),
    ("ActionGenerator", "QUALITY_THRESHOLD"): _to("simulation", "quality_threshold"),
    **{("ActionGenerator", key): _quality_switch(key) for key in _QUALITY_KEYS},
    ("Logging", "LOGLEVEL"): _log_level,
}

# Why each known TinyTroupe key has no troupe equivalent (the note logged when a file sets it).
IGNORED: dict[tuple[str, str], str] = {
    ("OpenAI", "REASONING_MODEL"): "troupe uses one model, [llm] model",
    ("OpenAI", "REASONING_EFFORT"): "troupe sends no reasoning effort",
    ("OpenAI", "AZURE_EMBEDDING_MODEL_API_VERSION"): "embeddings use [llm] api_version",
    ("OpenAI", "WAITING_TIME"): "retries back off exponentially with jitter, honouring Retry-After",
    ("OpenAI", "EXPONENTIAL_BACKOFF_FACTOR"): "retries back off exponentially with jitter, honouring Retry-After",
    ("OpenAI", "CACHE_FILE_NAME"): "calls are cached by content under [cache] dir",
    ("OpenAI", "MAX_CONTENT_DISPLAY_LENGTH"): "the transcript wraps content instead of cutting it",
    ("OpenAI", "TOP_P"): "troupe sends no top_p",
    ("OpenAI", "FREQ_PENALTY"): "troupe sends no frequency penalty",
    ("OpenAI", "FREQUENCY_PENALTY"): "troupe sends no frequency penalty",
    ("OpenAI", "PRESENCE_PENALTY"): "troupe sends no presence penalty",
    ("Simulation", "PARALLEL_AGENT_GENERATION"): "persona generation is batched by the pipeline",
    ("Simulation", "RAI_HARMFUL_CONTENT_PREVENTION"): "troupe adds no responsible-AI preamble to prompts",
    ("Simulation", "RAI_COPYRIGHT_INFRINGEMENT_PREVENTION"): "troupe adds no responsible-AI preamble to prompts",
    ("Cognition", "ENABLE_CONTINUOUS_CONTEXTUAL_SEMANTIC_MEMORY_RETRIEVAL"): "recall runs every turn ([simulation] recall_top_k; 0 = off)",
    ("Cognition", "MIN_EPISODE_LENGTH"): "use [simulation] consolidate_every",
    ("Cognition", "MAX_EPISODE_LENGTH"): "use [simulation] consolidate_every",
    ("ActionGenerator", "ENABLE_REGENERATION"): "a failed check always regenerates, up to quality_max_attempts",
    ("ActionGenerator", "ENABLE_DIRECT_CORRECTION"): "troupe regenerates instead of correcting in place",
    ("ActionGenerator", "CONTINUE_ON_FAILURE"): "troupe keeps the best attempt when every attempt fails",
    ("Logging", "LOGLEVEL_CONSOLE"): "troupe logs to the console at [logging] level",
    ("Logging", "LOGLEVEL_FILE"): "troupe writes no log file",
    ("Logging", "LOG_INCLUDE_THREAD_ID"): "troupe's log format is fixed",
}


def is_tinytroupe(sections: Mapping[str, Mapping[str, str]]) -> bool:
    return any(name in TINYTROUPE_SECTIONS for name in sections)


def translate(sections: Mapping[str, Mapping[str, str]], where: str) -> Layer:
    """troupe's (section, key) -> value layer for a TinyTroupe file's sections (troupe's own sections pass through)."""
    layer: Layer = {}
    for section, keys in sections.items():
        if section not in TINYTROUPE_SECTIONS:
            layer.update({(section, key): value for key, value in keys.items()})
            continue
        upper = {key.upper(): value for key, value in keys.items()}
        for key, value in upper.items():
            convert = MAPPED.get((section, key))
            if convert is not None:
                layer.update(convert(value, upper))
            elif (where, section, key) not in _noted:
                _noted.add((where, section, key))
                reason = IGNORED.get((section, key), "troupe has no such setting")
                logger.warning("%s [%s] %s: ignored; %s", where, section, key, reason)
    return layer


# Notes already logged, so a file read again (every load_config) does not repeat them.
_noted: set[tuple[str, str, str]] = set()
