"""Prefect flows that chain troupe's tasks and read and write Parquet datasets."""

import tasks  # noqa: F401 - first, so Prefect's logging defaults are quiet before Prefect loads

from .scenario import extraction_flow, population_flow, reduction_flow, scenario_flow, simulation_flow

__all__ = ["extraction_flow", "population_flow", "reduction_flow", "scenario_flow", "simulation_flow"]
