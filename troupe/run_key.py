"""What makes two runs the same: the scenario, the settings that shape results, and the code.

The pipeline's task keys and the run-level key are built from the same parts, so "this task would
compute the same thing" and "this run would write the same data" agree. Nothing here imports
Prefect: the CLI looks a run's key up before it pays for starting Prefect at all.
"""

from __future__ import annotations

import hashlib
import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .cache import cache_key
from .config import Config

if TYPE_CHECKING:
    from .scenario import LoadedScenario

KEYED_SECTIONS = ("llm", "local", "simulation")  # what shapes results; cache/datasets/logging do not
# Keys of those sections that change how fast or where, not what: left out of keys.
UNKEYED = {
    "llm": ("max_concurrency", "rpm", "tpm", "timeout_s"),
    "local": ("host", "port", "n_threads", "startup_timeout_s"),
    "simulation": ("transcript",),
}


def keyed_config(config: Config) -> dict[str, Any]:
    """The configuration a result depends on: what shapes it, not how fast it comes or where it goes."""
    keyed = {section: getattr(config, section).model_dump(mode="json") for section in KEYED_SECTIONS}
    for section, keys in UNKEYED.items():
        for key in keys:
            keyed[section].pop(key, None)
    keyed["pipeline"] = {"on_item_error": config.pipeline.on_item_error}
    if config.datasets.store_prompts:  # results then hold the prompts; only when on, so default keys stay as they were
        keyed["datasets"] = {"store_prompts": True}
    return keyed


@lru_cache(maxsize=4)
def code_digest(*packages: str) -> str:
    """sha256 of troupe's source and prompt templates (and of the other packages named), read once per process.

    Packages are found without importing them, so hashing ``flows`` does not load Prefect.
    """
    from .resources import data_path

    digest = hashlib.sha256()
    bases = [(Path(__file__).resolve().parent, "*.py"), (data_path("prompts"), "*.j2")]
    for package in packages:
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.submodule_search_locations:
            bases.append((Path(next(iter(spec.submodule_search_locations))).resolve(), "*.py"))
    for base, pattern in bases:
        digest.update(f"[{base.name}]".encode())
        for path in sorted(base.rglob(pattern)):
            digest.update(str(path.relative_to(base)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def run_key(loaded: "LoadedScenario", config: Config, code: str) -> str:
    """The key of a whole run: equal keys write equal datasets (time columns and the run id aside)."""
    return cache_key({"scenario": loaded.digest, "settings": keyed_config(config), "code": code})
