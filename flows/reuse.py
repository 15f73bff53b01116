"""A run that would write the same data as a completed run is answered with that run.

The run key (troupe.run_key) covers the scenario and its resolved personas, the settings that shape
results, and the code of troupe, its prompts, its flows and tasks. When a completed run has the same
key, ``troupe run`` prints it and exits without starting Prefect: a fully cached rerun through the
flow still pays ~2 s for importing Prefect and its engine, whatever the run's size. ``--rerun`` goes
through the flow anyway (every task then comes from Prefect's task cache and every call from the
call cache). With ``[cache] enabled = false`` nothing is reused.
"""

from __future__ import annotations

from typing import Any

from troupe.config import Config
from troupe.datasets.completed import CompletedRun, completed_run
from troupe.run_key import code_digest, run_key
from troupe.scenario import LoadedScenario

PACKAGES = ("flows", "tasks")  # besides troupe and its prompts: the code that writes the datasets


def key_of(loaded: LoadedScenario, config: Config) -> str:
    return run_key(loaded, config, code_digest(*PACKAGES))


def reusable(loaded: LoadedScenario, config: Config, run_id: str | None) -> CompletedRun | None:
    """The completed run this one would repeat: ``run_id`` itself when given, else the latest with the key."""
    if not config.cache.enabled:
        return None
    return completed_run(config.datasets.root, key_of(loaded, config), run_id)


def summary_of(run: CompletedRun, root: str) -> dict[str, Any]:
    """The CLI's run summary for a reused run: its rows, and what this command paid (nothing)."""
    row = run.row
    return {
        "run_id": run.run_id, "scenario": row["scenario"], "status": row["status"], "reused": True,
        "started": str(row["started"]), "finished": str(row["finished"]),
        "calls": 0, "cache_hits": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0, "task_runs": 0,
        "rows": run.rows, "datasets_root": root,
    }
