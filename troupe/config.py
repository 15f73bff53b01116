"""Configuration: one typed model, filled from four layers.

Precedence, lowest first: the packaged config.ini < ./config.ini in the working directory <
environment variables ``TROUPE_<SECTION>__<KEY>`` < explicit overrides (``{"llm.model": "x"}``).
Every value remembers where it came from, so an error names the file (or variable), section, key
and expected type. Secrets are never read from files: they come from the environment only
(:func:`api_key`).
"""

from __future__ import annotations

import configparser
import os
from pathlib import Path
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import ConfigError
from .resources import data_path

ENV_PREFIX = "TROUPE_"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LLMConfig(_Section):
    api_type: Literal["local", "openai", "azure"] = "local"
    model: str = "smollm2-135m-instruct"
    base_url: str = ""
    api_version: str = "2024-10-21"
    temperature: float = 0.7
    max_tokens: int = 512
    seed: int = 42
    timeout_s: float = 60.0
    max_attempts: int = 5
    max_resamples: int = Field(default=2, ge=0)
    max_concurrency: int = 8
    rpm: int = 0
    tpm: int = 0
    structured_output: Literal["auto", "json_schema", "json_object_schema", "json_object"] = "auto"
    embedding_model: str = "text-embedding-3-small"
    price_prompt_per_1m: float = 0.0
    price_completion_per_1m: float = 0.0


class LocalModelConfig(_Section):
    host: str = "127.0.0.1"
    port: int = 8765
    model_path: str = ""
    n_threads: int = 2
    n_ctx: int = 4096
    startup_timeout_s: float = 60.0


class CacheConfig(_Section):
    enabled: bool = True
    backend: str = "files"
    dir: str = ""


class SimulationConfig(_Section):
    step_mode: Literal["parallel", "sequential"] = "parallel"
    seed: int = 42
    max_actions_per_turn: int = 4
    max_turns_until_done: int = 2
    persona_max_items: int = 0  # 0 = the whole persona, as TinyTroupe; config.ini says what a cap saves
    constrain_targets: bool = True
    episode_prefix: int = 4
    episode_window: int = 16
    consolidate_every: int = 0
    recall_top_k: int = 3
    transcript: bool = True
    quality_checks: str = ""
    quality_threshold: int = Field(default=5, ge=0, le=9)
    quality_max_attempts: int = Field(default=2, ge=1)


class DatasetsConfig(_Section):
    root: str = "datasets"
    # llm_calls keeps each call's request messages and completion text (for distillation exports).
    # Off by default for size: a prompt repeats the persona and the memory every turn; measured,
    # llm_calls 3.4x and a run's datasets 2.1x larger (docs/performance.md, bench/store_prompts.py).
    store_prompts: bool = False


class PipelineConfig(_Section):
    """How a run is cut into Prefect tasks and how many run at once (see config.ini [pipeline])."""

    shard_size: int = Field(default=50, ge=1)
    window: int = Field(default=8, ge=1)
    max_workers: int = Field(default=8, ge=1)
    on_item_error: Literal["skip", "fail"] = "skip"
    runner: Literal["threads", "dask", "ray"] = "threads"
    cluster_address: str = ""
    cluster_workers: int = Field(default=2, ge=1)


class PrefectConfig(_Section):
    """Which Prefect API a run reports to (see config.ini [prefect] and flows/server.py)."""

    server: Literal["auto", "ephemeral", "none"] = "auto"
    port: int = Field(default=4200, ge=1, le=65535)
    home: str = ""
    startup_timeout_s: float = Field(default=90.0, gt=0)


class PreflightConfig(_Section):
    check_endpoint: bool = True


class LoggingConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "WARNING"


class Config(_Section):
    """All of troupe's settings, one attribute per config.ini section."""

    llm: LLMConfig = LLMConfig()
    local: LocalModelConfig = LocalModelConfig()
    cache: CacheConfig = CacheConfig()
    simulation: SimulationConfig = SimulationConfig()
    datasets: DatasetsConfig = DatasetsConfig()
    pipeline: PipelineConfig = PipelineConfig()
    prefect: PrefectConfig = PrefectConfig()
    logging: LoggingConfig = LoggingConfig()
    preflight: PreflightConfig = PreflightConfig()

    @property
    def cache_path(self) -> Path:
        """The cache directory: ``[cache] dir``, or ``<datasets root>/_cache`` when that is empty."""
        return Path(self.cache.dir) if self.cache.dir else Path(self.datasets.root) / "_cache"

    def with_overrides(self, overrides: Mapping[str, Any]) -> "Config":
        """A copy with ``{"section.key": value}`` applied and validated."""
        values = {name: dict(getattr(self, name)) for name in _SECTIONS}
        origins = {(s, k): "the current configuration" for s in values for k in values[s]}
        _apply(values, origins, _split_overrides(overrides), "argument")
        return _validate(values, origins)


_SECTIONS: dict[str, type[_Section]] = {
    name: field.annotation for name, field in Config.model_fields.items()  # type: ignore[misc]
}

_Layer = dict[tuple[str, str], Any]


def _read_ini(path: Path) -> _Layer:
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=None)
    parser.optionxform = str  # keep keys as written so unknown keys are reported as written
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error as exc:
        first_line = str(exc).splitlines()[0]
        raise ConfigError(f"{path}: cannot parse ({first_line}); fix the INI syntax") from None
    sections = {section: dict(parser[section].items()) for section in parser.sections()}
    from . import tinytroupe_config  # a TinyTroupe config.ini ([OpenAI], [Simulation], ...) is translated

    if tinytroupe_config.is_tinytroupe(sections):
        return tinytroupe_config.translate(sections, str(path))
    return {(section, key): value for section, keys in sections.items() for key, value in keys.items()}


def _read_env(environ: Mapping[str, str]) -> _Layer:
    layer: _Layer = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX):].partition("__")
        layer[(section.lower(), key.lower())] = value
    return layer


def _split_overrides(overrides: Mapping[str, Any]) -> _Layer:
    layer: _Layer = {}
    for dotted, value in overrides.items():
        section, dot, key = dotted.partition(".")
        if not dot:
            raise ConfigError(f"override {dotted!r}: expected section.key=value, e.g. llm.model=gpt-4o-mini")
        layer[(section, key)] = value
    return layer


def _describe(source: str, section: str, key: str) -> str:
    if source == "environment":
        return f"environment variable {ENV_PREFIX}{section.upper()}__{key.upper()}"
    if source == "argument":
        return f"argument {section}.{key}"
    return f"{source} [{section}] {key}"


def _apply(values: dict[str, dict[str, Any]], origins: dict[tuple[str, str], str], layer: _Layer, source: str) -> None:
    for (section, key), value in layer.items():
        model = _SECTIONS.get(section)
        if model is None:
            where = source if source not in ("environment", "argument") else _describe(source, section, key)
            raise ConfigError(
                f"{where}: unknown section [{section}]; known sections: {', '.join(_SECTIONS)}"
            )
        if key not in model.model_fields:
            raise ConfigError(
                f"{_describe(source, section, key)}: unknown key; keys of [{section}]: "
                f"{', '.join(model.model_fields)}"
            )
        values[section][key] = value
        origins[(section, key)] = source


def _validate(values: dict[str, dict[str, Any]], origins: dict[tuple[str, str], str]) -> Config:
    sections = {}
    for section, model in _SECTIONS.items():
        try:
            sections[section] = model(**values[section])
        except ValidationError as exc:
            error = exc.errors()[0]
            key = str(error["loc"][0])
            field = model.model_fields[key]
            expected = getattr(field.annotation, "__name__", None) or str(field.annotation).replace("typing.", "")
            raise ConfigError(
                f"{_describe(origins.get((section, key), 'default'), section, key)}: "
                f"{values[section][key]!r} is not a valid {expected} ({error['msg']})"
            ) from None
    return Config(**sections)


def load_config(
    overrides: Mapping[str, Any] | None = None,
    *,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Read every layer and return the validated configuration."""
    values: dict[str, dict[str, Any]] = {name: {} for name in _SECTIONS}
    origins: dict[tuple[str, str], str] = {}
    packaged = data_path("config.ini")
    local = (cwd or Path.cwd()) / "config.ini"
    _apply(values, origins, _read_ini(packaged), str(packaged))
    if local.is_file() and local.resolve() != packaged.resolve():
        _apply(values, origins, _read_ini(local), str(local))
    _apply(values, origins, _read_env(os.environ if environ is None else environ), "environment")
    _apply(values, origins, _split_overrides(overrides or {}), "argument")
    return _validate(values, origins)


def api_key(config: LLMConfig, environ: Mapping[str, str] | None = None) -> str | None:
    """The API key for the configured provider, from the environment only (never from a file)."""
    env = os.environ if environ is None else environ
    if config.api_type == "azure":
        return env.get("AZURE_OPENAI_KEY")
    if config.api_type == "openai":
        return env.get("OPENAI_API_KEY")
    return None
