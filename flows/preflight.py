"""Every check before any work: a run that would fail on its input stops here, having written nothing.

``check_run`` runs before Prefect starts and before any LLM call: the run id, the configuration
(./config.ini, the environment, --set), the scenario (its encoding, then its content and
personas), the credentials the chosen ``api_type`` needs, the dataset root and cache directory
(writable, without leaving a file behind), and last the endpoint (one cheap ``GET /models``).
Each failure is one :class:`PreflightError` line naming the file, field or variable and the fix;
the CLI turns it into exit code 2.

``scenario_problems`` is what ``troupe validate`` reports: every problem in the file at once,
including reduction SQL bound by DuckDB against the datasets' columns over empty tables.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import yaml
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from troupe.config import Config, api_key, load_config
from troupe.datasets.schemas import DATASETS, EXTRACTIONS_BASE, FIELD_TYPES
from troupe.errors import ConfigError, SpecError
from troupe.scenario import LoadedScenario, Scenario, _location, load_scenario

if TYPE_CHECKING:
    import duckdb

RUN_ID = re.compile(r"[A-Za-z0-9._-]+")
_ENDPOINT_TIMEOUT_S = 10.0  # a healthy endpoint lists its models in well under a second


class PreflightError(ConfigError):
    """A check before the run failed: bad input or an environment the run cannot work in (exit 2)."""


# ----- one check each -----


def check_run_id(run_id: str | None) -> None:
    """A run id names a partition folder (``run_id=<id>``): no path separators, no ``.`` or ``..``."""
    if run_id is None:
        return
    if not RUN_ID.fullmatch(run_id) or run_id in (".", ".."):
        raise PreflightError(
            f"--run-id {run_id!r}: a run id is letters, digits, '.', '_' and '-' (not '.' or '..'); "
            "give one such as 2025-05-03_focus-group"
        )


def check_encoding(path: Path) -> None:
    """A scenario must be UTF-8; say which file and where it is not, which YAML's own error does not."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SpecError(f"{path}: no such scenario file; check the path") from None
    except IsADirectoryError:
        raise SpecError(f"{path}: is a directory, not a scenario file; give the .yaml file") from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the file ({exc.strerror}); check its permissions") from None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SpecError(
            f"{path}: line {line} (byte {exc.start}): not valid UTF-8 (0x{data[exc.start]:02x}); save the file as UTF-8"
        ) from None


def effective_config(loaded: LoadedScenario, overrides: dict[str, Any] | None, datasets_root: str | None) -> Config:
    """The run's configuration, layered as the flows layer it: files < environment < scenario < arguments."""
    config = load_config().with_overrides(loaded.scenario.config).with_overrides(overrides or {})
    return config.with_overrides({"datasets.root": datasets_root}) if datasets_root else config


def check_credentials(config: Config) -> None:
    """The variables the chosen api_type needs are set (their values are never shown)."""
    llm = config.llm
    if llm.api_type == "openai" and not api_key(llm) and not llm.base_url:
        raise PreflightError(
            "OPENAI_API_KEY is not set, and api_type = openai needs it; export it, point [llm] base_url at an "
            "OpenAI-compatible server, or set [llm] api_type = local"
        )
    if llm.api_type == "azure":
        if not api_key(llm):
            raise PreflightError("AZURE_OPENAI_KEY is not set, and api_type = azure needs it; export it")
        if not (llm.base_url or os.environ.get("AZURE_OPENAI_ENDPOINT")):
            raise PreflightError(
                "AZURE_OPENAI_ENDPOINT is not set, and api_type = azure needs it; export it or set [llm] base_url"
            )


def check_writable(path: Path, setting: str) -> None:
    """path is, or can become, a directory troupe can write in; probed with a file that vanishes at once.

    Permission bits are not enough (root ignores them, a read-only mount does not), so the check
    creates an anonymous temporary file in the nearest existing folder: nothing is left behind and
    nothing is created when the check fails.
    """
    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        where = "is a file" if existing == path else f"is under {existing}, which is a file"
        raise PreflightError(f"{setting} {path}: {where}, not a directory; point it at a directory")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise PreflightError(
            f"{setting} {path}: cannot write in {existing} ({exc.strerror}); choose a writable directory"
        ) from None


def check_endpoint(config: Config) -> None:
    """One cheap request (GET /models): any HTTP answer means the endpoint is there; 401/403 means the key is wrong.

    The embedded model (api_type = local without base_url) is started on demand by the run, so
    there is nothing to ask yet; a ``[local] model_path`` that names no file is caught here.
    """
    llm = config.llm
    if llm.api_type == "local" and not llm.base_url:
        if config.local.model_path:
            from troupe.local_model import LocalModelError, weights_path

            try:
                weights_path(config.local)
            except LocalModelError as exc:
                raise PreflightError(str(exc)) from None
        return
    import openai  # here, not at the top: troupe validate never needs it

    common: dict[str, Any] = {"timeout": min(llm.timeout_s, _ENDPOINT_TIMEOUT_S), "max_retries": 1}
    if llm.api_type == "azure":
        where = llm.base_url or os.environ.get("AZURE_OPENAI_ENDPOINT", "")
        client: openai.OpenAI = openai.AzureOpenAI(
            azure_endpoint=where, api_key=api_key(llm), api_version=llm.api_version, **common
        )
        variable = "AZURE_OPENAI_KEY"
    else:
        client = openai.OpenAI(base_url=llm.base_url or None, api_key=api_key(llm) or "unused", **common)
        where = str(client.base_url)
        variable = "OPENAI_API_KEY"
    try:
        with client:
            client.models.list()
    except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
        raise PreflightError(
            f"{variable}: the endpoint at {where} refused the key (HTTP {exc.status_code}); export a valid key"
        ) from None
    except openai.APIStatusError:
        return  # it answered; some OpenAI-compatible servers have no /models
    except (openai.APIConnectionError, openai.APITimeoutError) as exc:
        reason = "timed out" if isinstance(exc, openai.APITimeoutError) else "cannot connect"
        raise PreflightError(
            f"[llm] base_url {where}: the endpoint is not answering ({reason}); start it or fix base_url, "
            "or --set preflight.check_endpoint=false for a rerun served from the cache"
        ) from None


# ----- troupe run -----


def check_run(
    scenario: Path, datasets: Path | None, run_id: str | None, overrides: dict[str, Any] | None = None, endpoint: bool = True
) -> tuple[LoadedScenario, Config]:
    """Every check a run needs, cheapest first; the first failure raises one line, nothing is written.

    ``endpoint=False`` leaves out asking the endpoint (:func:`check_endpoint`), for a caller that may
    not need it (a run answered by a completed one makes no call).
    """
    check_run_id(run_id)
    load_config()  # ./config.ini and TROUPE_* variables, on their own, so the error names them
    check_encoding(scenario)
    loaded = load_scenario(scenario)
    problems = sql_problems(loaded.scenario, scenario)
    if problems:
        raise SpecError(problems[0])
    config = effective_config(loaded, overrides, str(datasets) if datasets else None)
    check_credentials(config)
    root_setting = "--datasets" if datasets else "[datasets] root"
    check_writable(Path(config.datasets.root), root_setting)
    check_writable(config.cache_path, "[cache] dir" if config.cache.dir else f"the cache under {root_setting}")
    if endpoint and config.preflight.check_endpoint:
        check_endpoint(config)
    return loaded, config


# ----- troupe validate -----


def scenario_problems(path: Path) -> tuple[LoadedScenario | None, list[str]]:
    """The scenario and every problem found in it (empty when it is valid), each one line."""
    try:
        check_encoding(path)
        return _with_sql_problems(load_scenario(path), path)
    except SpecError as exc:
        first = str(exc)
    scenario, problems = _schema_problems(path)
    if scenario is None:
        return None, problems or [first]
    # The file's structure is valid but something else is not (a persona file, a name): that, and the SQL.
    return None, [first, *sql_problems(scenario, path)]


def _with_sql_problems(loaded: LoadedScenario, path: Path) -> tuple[LoadedScenario | None, list[str]]:
    problems = sql_problems(loaded.scenario, path)
    return (None if problems else loaded), problems


def _schema_problems(path: Path) -> tuple[Scenario | None, list[str]]:
    """Every schema error in the file (load_scenario reports the first), or the valid model."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            return None, []  # not a mapping at all: the first error says so
        return Scenario.model_validate(data), []
    except ValidationError as exc:
        return None, [
            f"{path}: {_location(error['loc'])}: {error['msg'].removeprefix('Value error, ')}; "
            "see docs/scenarios.md for the scenario format"
            for error in exc.errors()
        ]
    except Exception:  # unreadable or not YAML: the first error already says so
        return None, []


def sql_problems(scenario: Scenario, path: Path) -> list[str]:
    """Bind every reduction's SQL in DuckDB over empty tables with the datasets' columns."""
    if not scenario.reductions:
        return []
    import duckdb  # here: a scenario without reductions never needs it

    connection = _empty_datasets(scenario)
    problems = []
    try:
        for i, reduction in enumerate(scenario.reductions):
            try:
                connection.execute(reduction.sql).fetchall()
            except duckdb.Error as exc:
                problems.append(
                    f"{path}: reductions[{i}].sql ({reduction.name}): {str(exc).splitlines()[0]}; "
                    f"the views are {', '.join(DATASETS)} (columns in docs/datasets.md)"
                )
    finally:
        connection.close()
    return problems


def _empty_datasets(scenario: Scenario) -> "duckdb.DuckDBPyConnection":
    """A locked-down connection with one empty view per dataset, extractions with this scenario's fields."""
    import duckdb

    connection = duckdb.connect()
    for name, schema in DATASETS.items():
        if name == "extractions" and scenario.extraction is not None:
            schema = pa.schema([*EXTRACTIONS_BASE, *_extraction_columns(scenario)])
        connection.register(f"_{name}_empty", pa.schema([("run_id", pa.string()), *schema]).empty_table())
        connection.execute(f"CREATE VIEW {name} AS SELECT * FROM _{name}_empty")
    connection.execute("SET enable_external_access = false")  # validating must not read files
    return connection


def _extraction_columns(scenario: Scenario) -> list[tuple[str, pa.DataType]]:
    """The extraction fields as (column, Arrow type), stored as the flow stores them."""
    fields = scenario.extraction.fields if scenario.extraction else {}
    return [(name, FIELD_TYPES[getattr(spec, "storage_type", spec.type)]) for name, spec in fields.items()]


def report(path: Path, console: Console) -> LoadedScenario:
    """For ``troupe validate``: print every problem but the last, raise the last (exit 2); or return the scenario.

    The CLI prints the raised one as it prints every error, so one problem is one line and N are N lines.
    """
    loaded, problems = scenario_problems(path)
    if loaded is not None:
        return loaded
    for problem in problems[:-1]:
        console.print(f"[bold red]error:[/] {escape(problem)}", soft_wrap=True)
    raise SpecError(problems[-1])
