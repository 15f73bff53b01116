"""In-place experiments: one notebook, run once per arm, with the experiment's state in a JSON file.

The notebook asks which experiment is active, simulates it, adds its results, and activates the
next one; rerunning the notebook then runs the next arm. When every arm has run, the results are
compared with :class:`StatisticalTester`. The file is the state (plain JSON), written atomically
after every change, so a crash never leaves it half-written.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from ..errors import SpecError
from .statistics import StatisticalTester


class Experiment(BaseModel):
    results: dict[str, Any] = Field(default_factory=dict)
    finished: bool = False
    statistical_test_results_vs_others: dict[str, Any] | None = None


class RunnerState(BaseModel):
    experiments: dict[str, Experiment] = Field(default_factory=dict)
    active_experiment: str | None = None
    finished_all_experiments: bool = False


def _merge(old: Any, new: Any) -> Any:
    """Lists extend, dicts merge key by key, anything else is replaced."""
    if isinstance(old, dict) and isinstance(new, dict):
        return {**old, **{k: _merge(old[k], v) if k in old else v for k, v in new.items()}}
    if isinstance(old, list) and isinstance(new, list):
        return [*old, *new]
    return new


class InPlaceExperimentRunner:
    """TinyTroupe's InPlaceExperimentRunner, with its state in ``config_file_path``."""

    def __init__(self, config_file_path: str | os.PathLike[str] = "experiment_config.json") -> None:
        self.config_file_path = Path(config_file_path)
        self.state = self._load()
        self._save()

    # ----- the state file -----

    def _load(self) -> RunnerState:
        if not self.config_file_path.exists():
            return RunnerState()
        try:
            return RunnerState.model_validate_json(self.config_file_path.read_text(encoding="utf-8"))
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(p) for p in error["loc"]) or "top level"
            raise SpecError(
                f"{self.config_file_path}: {where}: {error['msg']}; fix the file or delete it to start the experiments afresh"
            ) from None

    def _save(self) -> None:
        self.config_file_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.config_file_path.parent, prefix=".experiment-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(self.state.model_dump_json(indent=2))
        os.replace(tmp, self.config_file_path)

    def _repr_html_(self) -> str:
        """A notebook table: each experiment, whether it is active or finished, and its metrics with their counts."""
        from .._html import table

        return table(
            ["experiment", "state", "results"],
            [
                [
                    name,
                    "active" if name == self.state.active_experiment else "finished" if e.finished else "waiting",
                    ", ".join(f"{k} ({len(v) if isinstance(v, list) else 1})" for k, v in e.results.items()),
                ]
                for name, e in self.state.experiments.items()
            ],
        )

    @property
    def experiment_config(self) -> dict[str, Any]:
        """The state as a dict, under TinyTroupe's attribute name."""
        return self.state.model_dump(mode="json")

    def _experiment(self, name: str) -> Experiment:
        if name not in self.state.experiments:
            known = ", ".join(self.state.experiments) or "none"
            raise ValueError(f"experiment {name!r} does not exist; known experiments: {known}")
        return self.state.experiments[name]

    # ----- arms -----

    def add_experiment(self, experiment_name: str) -> None:
        if experiment_name not in self.state.experiments:
            self.state.experiments[experiment_name] = Experiment()
            self.state.finished_all_experiments = False
            self._save()

    def get_unfinished_experiments(self) -> list[str]:
        return [name for name, experiment in self.state.experiments.items() if not experiment.finished]

    def has_finished_all_experiments(self) -> bool:
        return self.state.finished_all_experiments

    def get_active_experiment(self) -> str | None:
        return self.state.active_experiment

    def activate_next_experiment(self) -> str | None:
        """Finish the active experiment (if any) and activate the next unfinished one (None: all done)."""
        if self.state.active_experiment is not None:
            self.state.experiments[self.state.active_experiment].finished = True
        unfinished = self.get_unfinished_experiments()
        self.state.active_experiment = unfinished[0] if unfinished else None
        self.state.finished_all_experiments = not unfinished
        self._save()
        return self.state.active_experiment

    def fix_active_experiment(self, experiment_name: str) -> None:
        """Make one experiment active regardless of order (to rerun it)."""
        self._experiment(experiment_name)
        self.state.active_experiment = experiment_name
        self._save()

    def finish_active_experiment(self) -> bool:
        """Finish the active experiment without activating another; False when none is active."""
        if self.state.active_experiment is None:
            return False
        self.state.experiments[self.state.active_experiment].finished = True
        self.state.active_experiment = None
        self.state.finished_all_experiments = not self.get_unfinished_experiments()
        self._save()
        return True

    # ----- results -----

    def add_experiment_results(self, results: dict[str, Any], experiment_name: str | None = None, merge: bool = True) -> None:
        """Add results (``{"metric": [values]}``) to an experiment (default: the active one); lists extend."""
        name = experiment_name or self.state.active_experiment
        if name is None:
            raise ValueError("no active experiment to add results to; call activate_next_experiment() or pass experiment_name")
        experiment = self._experiment(name)
        experiment.results = _merge(experiment.results, results) if merge else {**experiment.results, **results}
        self._save()

    def get_experiment_results(self, experiment_name: str | None = None) -> dict[str, Any]:
        if experiment_name is None:
            return {name: experiment.results for name, experiment in self.state.experiments.items()}
        return self._experiment(experiment_name).results

    def run_statistical_tests(self, control_experiment_name: str, test_type: str = "welch_t_test", alpha: float = 0.05) -> dict[str, Any]:
        """Compare the control's results with every other experiment's; stored under the control."""
        control = self._experiment(control_experiment_name)
        treatments = {name: e.results for name, e in self.state.experiments.items() if name != control_experiment_name}
        results = StatisticalTester({control_experiment_name: control.results}, treatments).run_test(test_type, alpha)
        control.statistical_test_results_vs_others = results
        self._save()
        return results
