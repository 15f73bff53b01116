"""TinyTroupe's client switches: ``force_api_cache`` and ``force_api_type`` for the default gateway.

TinyTroupe notebooks often start with ``force_api_cache(True, "my_cache.pickle")``. Here every
call already goes through one content-keyed call cache; these switches change the configuration
of the process's default gateway in place, so the agents that use it (every agent built without
a gateway or config of its own) follow at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .llm import LLMGateway


def _reconfigure(overrides: dict[str, Any]) -> "LLMGateway":
    from .cache import open_cache
    from .llm import default_gateway
    from .llm.structured import resolve_mode

    gateway = default_gateway()
    config = gateway.config.with_overrides(overrides)
    gateway.config = config
    gateway.cache = open_cache(config.cache.enabled, config.cache.backend, config.cache_path)
    gateway.mode = resolve_mode(config.llm.structured_output, config.llm.api_type)
    return gateway


def force_api_cache(cache_api_calls: bool, cache_file_name: str | None = None) -> "LLMGateway":
    """Turn the call cache on or off; cache_file_name names its directory (a ``.pickle`` suffix is dropped)."""
    overrides: dict[str, Any] = {"cache.enabled": bool(cache_api_calls)}
    if cache_file_name:
        path = Path(cache_file_name)
        overrides["cache.dir"] = str(path.with_suffix("") if path.suffix in (".pickle", ".pkl") else path)
    return _reconfigure(overrides)


def force_api_type(api_type: str) -> "LLMGateway":
    """Use another provider ("openai", "azure", "local") for the default gateway's next calls."""
    return _reconfigure({"llm.api_type": api_type})
