"""The ``troupe`` command: run scenarios, query their datasets with SQL, list and show runs, serve on a schedule.

Errors are one line on stderr: exit 2 for bad input (a scenario, a config value, a query), 1 for
a run that failed. ``--debug`` shows the traceback. Prefect and the flows load only in the
commands that run them, so ``troupe sql`` and ``troupe runs`` start fast.
"""

from __future__ import annotations

import itertools
import json
import logging
import sys
import time
from contextlib import contextmanager, nullcontext
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Iterator, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from troupe.examples import EXAMPLES_DIR
from troupe.export.options import Format as ExportFormat, Per as ExportPer

app = typer.Typer(
    name="troupe",
    help="Simulate people with LLMs and turn the simulations into cached, queryable datasets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

DEMO_SCENARIO = EXAMPLES_DIR / "scenarios" / "demo.yaml"

DatasetsOption = Annotated[
    Optional[Path], typer.Option("--datasets", "-d", help="Dataset root (default: [datasets] root, ./datasets).")
]
DebugOption = Annotated[bool, typer.Option("--debug", help="Show the Python traceback of an error.")]


class Format(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


def _bad_input_errors() -> tuple[type[BaseException], ...]:
    from troupe.datasets import QueryError
    from troupe.errors import ConfigError, SpecError

    return (SpecError, ConfigError, QueryError)


@contextmanager
def _errors(debug: bool) -> Iterator[None]:
    """Turn troupe's errors into one line and an exit code (2 bad input, 1 failed run)."""
    try:
        yield
    except typer.Exit:
        raise
    except Exception as exc:
        if debug:
            raise
        code = 2 if isinstance(exc, _bad_input_errors()) else 1
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        err.print(f"[bold red]error:[/] {escape(text)}", soft_wrap=True)
        raise typer.Exit(code) from None


def _root(datasets: Path | None) -> Path:
    if datasets is not None:
        return datasets
    from troupe.config import load_config

    return Path(load_config().datasets.root)


def _overrides(settings: list[str], model: str | None) -> dict[str, str]:
    from troupe.errors import ConfigError

    overrides: dict[str, str] = {}
    for item in settings:
        key, eq, value = item.partition("=")
        if not eq or "." not in key:
            raise ConfigError(f"--set {item}: expected section.key=value, e.g. --set llm.temperature=0.2")
        overrides[key.strip()] = value.strip()
    if model:
        overrides["llm.model"] = model
    from troupe.config import load_config

    load_config().with_overrides(overrides)  # an unknown key or a bad value stops here, before Prefect starts
    return overrides


# ----- run / demo -----


class _NoRunErrors(logging.Filter):
    """Drops Prefect's flow and task run errors (with tracebacks): the CLI reports the error in one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.ERROR or not record.name.startswith(("prefect.flow_runs", "prefect.task_runs"))


@contextmanager
def _console_logs(debug: bool) -> Iterator[None]:
    """Without --debug, keep run errors off the console's log handlers; they still reach the Prefect API."""
    handlers = [] if debug else [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)]
    quiet = _NoRunErrors()
    for handler in handlers:
        handler.addFilter(quiet)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(quiet)


class _Display:
    """A rich progress display fed by troupe's progress events."""

    def __init__(self, console: Console) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(), console=console, transient=False,
        )
        self.tasks: dict[str, Any] = {}
        self.calls = self.hits = self.tokens = 0
        self.cost = 0.0

    def __call__(self, event: Any) -> None:
        if event.kind == "call":
            self.hits += event.data.get("cache_hit", False)
            self.calls += not event.data.get("cache_hit", False)
            self.tokens += event.data.get("tokens", 0)
            self.cost += event.data.get("cost_usd", 0.0)
        elif event.kind == "stage":
            self.tasks[event.stage] = self.progress.add_task(event.stage, total=event.total, info="")
        elif event.kind == "advance" and event.stage in self.tasks:
            self.progress.advance(self.tasks[event.stage], event.advance)
        info = f"calls {self.calls}  cache hits {self.hits}  tokens {self.tokens}  ${self.cost:.4f}"
        for task in self.tasks.values():
            self.progress.update(task, info=info)


def _run(
    scenario: Path, datasets: Path | None, run_id: str | None, overrides: dict[str, str], quiet: bool, transcript: bool, debug: bool,
    rerun: bool = True,
) -> dict[str, Any]:
    from troupe import progress
    from flows import collector, preflight, server

    started = time.perf_counter()
    loaded, config = preflight.check_run(scenario, datasets, run_id, overrides, endpoint=False)  # bad input stops here, before Prefect starts
    if not rerun:
        from flows import reuse

        completed = reuse.reusable(loaded, config, run_id)
        if completed is not None:
            summary = reuse.summary_of(completed, config.datasets.root)
            summary["wall_s"] = time.perf_counter() - started
            _print_summary(summary)
            return summary
    if config.preflight.check_endpoint:
        preflight.check_endpoint(config)
    overrides = {"simulation.transcript": "true" if transcript else "false", **overrides}
    from flows import interrupts, runner, scenario_flow  # noqa: I001 - runner loads Prefect quietly
    from troupe.llm.gateway import import_client_in_background

    runner.task_runner(config)  # a missing extra stops here, before a server starts
    collector.freeze_imports()  # the modules are loaded: the collector need not walk them again
    display = _Display(err)
    unsubscribe = progress.subscribe(display) if not quiet else (lambda: None)
    arguments = (str(scenario.resolve()), run_id, str(datasets) if datasets else None, overrides)
    phase = "before the run started; nothing was written"
    try:
        with interrupts.handling_signals(keep=lambda: server.kept(config.prefect)):
            import_client_in_background()  # off the first calls' path, while the server and the flow run start
            api = server.resolve(config.prefect)  # starts or reuses troupe's Prefect server ([prefect] server = auto)
            if not quiet:
                err.print(escape(f"Prefect: {api.source}" + (f", UI at {api.url.removesuffix('/api')}" if api.url else "")), style="dim")
            with server.using(api):
                phase = "and its row says cancelled; rerun it to finish (finished calls are cached)"
                with _console_logs(debug), (nullcontext() if quiet else display.progress):
                    state = runner.run_flow(scenario_flow, config, *arguments, return_state=True)
                phase = f"after the run ended ({state.name})"
                completed = state.is_completed()
                summary = state.result() if completed else None
                server.settle(state.state_details.flow_run_id, summary["run_id"] if summary else run_id, summary and summary.get("task_runs"))
                if not completed:
                    state.result()  # raises the run's error
    except BaseException as exc:
        code = interrupts.exit_code(exc)
        if code is None:
            raise
        err.print(escape(f"interrupted: stopped {phase}"), style="bold red")
        raise typer.Exit(code) from None
    finally:
        unsubscribe()
    summary["wall_s"] = time.perf_counter() - started
    _print_summary(summary)
    return summary


def _print_summary(summary: dict[str, Any]) -> None:
    reused = " (reused: same scenario, settings and code; nothing ran; --rerun runs it again)" if summary.get("reused") else ""
    table = Table(title=escape(f"run {summary['run_id']} ({summary['scenario']}): {summary['status']}{reused}"), show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    table.add_row("wall time", f"{summary['wall_s']:.1f} s")
    table.add_row("LLM calls", str(summary["calls"]))
    table.add_row("cache hits", str(summary["cache_hits"]))
    table.add_row("tokens", f"{summary['prompt_tokens']} prompt + {summary['completion_tokens']} completion")
    table.add_row("cost", f"${summary['cost_usd']:.4f}")
    for dataset, rows in summary["rows"].items():
        table.add_row(f"rows: {dataset}", str(rows))
    table.add_row("datasets", str(Path(summary["datasets_root"]).resolve()))
    out.print(table)
    out.print(f"Query it: troupe sql \"SELECT * FROM extractions WHERE run_id = '{summary['run_id']}'\" --datasets {summary['datasets_root']}")


@app.command()
def run(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    datasets: DatasetsOption = None,
    run_id: Annotated[Optional[str], typer.Option("--run-id", help="Partition name (default: time + scenario hash).")] = None,
    model: Annotated[Optional[str], typer.Option("--model", help="Model name (sets llm.model).")] = None,
    set_: Annotated[list[str], typer.Option("--set", help="Override a setting: section.key=value (repeatable).")] = [],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display; logs and the summary only.")] = False,
    transcript: Annotated[bool, typer.Option("--transcript", help="Print the conversation as it happens.")] = False,
    report: Annotated[Optional[Path], typer.Option("--report", help="Write the run's report here when it ends (.html or .md).")] = None,
    rerun: Annotated[
        bool, typer.Option("--rerun", help="Run even when a completed run has the same scenario, settings and code (default: print that run).")
    ] = False,
    debug: DebugOption = False,
) -> None:
    """Run a scenario as a Prefect flow and write its datasets.

    A completed run of the same scenario, settings and code (the --run-id given, else the latest)
    is printed instead of run again, without starting Prefect; --rerun runs it through the caches.

    Example: troupe run focus_group.yaml --set llm.temperature=0.3 --transcript --report report.html
    """
    with _errors(debug):
        if report is not None:
            from troupe.report import check_out

            check_out(report, "--report")  # a bad path stops here, before the run
        summary = _run(scenario, datasets, run_id, _overrides(set_, model), quiet, transcript, debug, rerun=rerun or transcript)
        if report is not None:
            _write_report(Path(summary["datasets_root"]), summary["run_id"], report)


@app.command()
def demo(
    datasets: DatasetsOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No transcript or progress.")] = False,
    debug: DebugOption = False,
) -> None:
    """Run the demo scenario on the configured model (the embedded local model by default).

    Example: troupe demo
    """
    with _errors(debug):
        _run(DEMO_SCENARIO, datasets, None, {}, quiet, transcript=not quiet, debug=debug)


@app.command()
def validate(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    debug: DebugOption = False,
) -> None:
    """Check a scenario (format, personas, names, SQL) without running it.

    Example: troupe validate focus_group.yaml
    """
    from flows import preflight

    with _errors(debug):
        loaded = preflight.report(scenario, err)  # every problem, one line each
        worlds = ", ".join(f"{w.name} ({w.steps} steps)" for w in loaded.scenario.worlds) or "none"
        population, survey, experiment = loaded.scenario.population, loaded.scenario.survey, loaded.scenario.experiment
        extra = (f" + a population of {population.size}" if population else "") + (
            f"; a survey of {len(survey.questions)} questions" if survey else ""
        ) + (
            f"; an experiment ({experiment.assign}) with arms {', '.join(a.name for a in experiment.arms)}" if experiment else ""
        )
        out.print(escape(f"{scenario}: valid: {len(loaded.personas)} personas{extra}; worlds {worlds}; hash {loaded.digest[:12]}"))


# ----- sql / runs / show -----


def _holds_interval(kind: Any) -> bool:
    """Whether an Arrow type is an interval or nests one (a list of intervals, a struct with one)."""
    import pyarrow as pa

    return pa.types.is_interval(kind) or any(_holds_interval(kind.field(i).type) for i in range(kind.num_fields))


def _intervals_as_text(table: Any, nested: bool = False) -> Any:
    """Interval columns as DuckDB writes them ('1 day 02:30:00'): Arrow's have no CSV form and print as MonthDayNano(...).

    A column that nests intervals becomes DuckDB's text of the whole value ('[1 day]'); with nested,
    so does every list, struct or map column (CSV has no form for them either: '[a, b]').
    """
    import pyarrow as pa

    names = [f.name for f in table.schema if _holds_interval(f.type) or (nested and pa.types.is_nested(f.type))]
    if not names:
        return table
    import duckdb

    casts = ", ".join('CAST("{0}" AS VARCHAR) AS "{0}"'.format(name.replace('"', '""')) for name in names)
    with duckdb.connect() as connection:
        connection.register("result", table)
        return connection.sql(f"SELECT * REPLACE ({casts}) FROM result").to_arrow_table()


def _print_table(table: Any, fmt: Format, out_file: Path | None) -> None:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    table = _intervals_as_text(table)
    if fmt is Format.parquet:
        if out_file is None:
            from troupe.errors import ConfigError

            raise ConfigError("--format parquet: needs --out FILE.parquet")
        pq.write_table(table, out_file)
        out.print(f"{table.num_rows} rows written to {out_file}")
        return
    if fmt is Format.csv:
        table = _intervals_as_text(table, nested=True)
        if out_file is not None:
            pacsv.write_csv(table, out_file)
        else:
            import io

            buffer = io.BytesIO()
            pacsv.write_csv(table, buffer)
            sys.stdout.write(buffer.getvalue().decode())
        return
    if fmt is Format.json:
        text = json.dumps(table.to_pylist(), default=str, ensure_ascii=False, indent=1)
        if out_file is not None:
            out_file.write_text(text + "\n")
        else:
            sys.stdout.write(text + "\n")
        return
    rich_table = Table(*(escape(name) for name in table.column_names), show_lines=False)
    if "run_id" in table.column_names:  # `troupe show` needs the whole id: never cut or wrapped
        column = rich_table.columns[table.column_names.index("run_id")]
        column.no_wrap = True
        column.min_width = max((len(str(v)) for v in table.column("run_id").to_pylist()), default=6)
    for row in table.to_pylist():
        rich_table.add_row(*("" if v is None else escape(str(v)) for v in row.values()))
    out.print(rich_table)
    out.print(f"[dim]{table.num_rows} rows[/]")


@app.command()
def sql(
    query: Annotated[Optional[str], typer.Argument(help="One SELECT statement; omit it for an interactive prompt.")] = None,
    datasets: DatasetsOption = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
    out_file: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write the result to this file.")] = None,
    debug: DebugOption = False,
) -> None:
    """Query every run's datasets with DuckDB (read-only).

    Views: runs, personas, events, extractions, llm_calls, and reduction_<name>; run_id is a column.

    Example: troupe sql "SELECT agent, count(*) FROM events WHERE type = 'TALK' GROUP BY agent"
    """
    from troupe.datasets import read_only_query

    root = _root(datasets)
    if query is not None:
        with _errors(debug):
            _print_table(read_only_query(root, query), fmt, out_file)
        return
    from troupe.datasets import QueryError, view_names

    out.print(f"troupe sql over {root} — views: {', '.join(view_names(root))}. Empty line or Ctrl-D to quit.")
    while True:
        try:
            line = input("sql> ").strip()
        except EOFError:
            break
        if not line or line.lower() in ("exit", "quit", r"\q"):
            break
        try:
            _print_table(read_only_query(root, line), Format.table, None)
        except QueryError as exc:
            err.print(f"[bold red]error:[/] {escape(str(exc))}")


@app.command()
def runs(datasets: DatasetsOption = None, debug: DebugOption = False) -> None:
    """List the runs, newest first.

    Example: troupe runs --datasets ./datasets
    """
    from troupe.datasets import read_only_query

    with _errors(debug):
        table = read_only_query(
            _root(datasets),
            "SELECT run_id, scenario, status, strftime(started, '%Y-%m-%d %H:%M:%S') AS started, "
            "round(epoch(finished) - epoch(started), 1) AS seconds, model, calls, cache_hits, "
            "prompt_tokens + completion_tokens AS tokens, round(cost_usd, 4) AS cost_usd "
            "FROM runs ORDER BY runs.started DESC",
        )
        _print_table(table, Format.table, None)


@app.command()
def show(
    run_id: Annotated[str, typer.Argument(help="The run to show.")],
    datasets: DatasetsOption = None,
    debug: DebugOption = False,
) -> None:
    """Print a run's transcript, rendered from its events.

    Example: troupe show 20250503-090000-1a2b3c
    """
    from troupe.agent.state import Event
    from troupe.datasets import read_only_query
    from troupe.errors import SpecError
    from troupe.transcript import Transcript

    with _errors(debug):
        rows = read_only_query(
            _root(datasets),
            "SELECT * EXCLUDE (run_id), max(step) OVER (PARTITION BY world) AS steps FROM events "
            "WHERE run_id = '" + run_id.replace("'", "''") + "' ORDER BY world, seq",
        ).to_pylist()
        if not rows:
            raise SpecError(f"run {run_id}: no events; list the runs with troupe runs")
        transcript = Transcript(True, out)
        for (world, step, steps), group in itertools.groupby(rows, key=lambda r: (r["world"], r["step"], r["steps"])):
            transcript.replay(world, step, steps, (Event(**{k: r[k] for k in _EVENT_FIELDS}, time=r["sim_time"]) for r in group))


_EVENT_FIELDS = ("step", "agent", "direction", "type", "source", "target", "content", "call_key")


# ----- populations -----


def _print_population(root: Path, run_id: str) -> None:
    """A run's population profile: target vs sampled vs achieved per dimension, then the near-duplicate rate."""
    from troupe.errors import SpecError
    from troupe.profiling import population_dir, read_profile

    profile = read_profile(root, run_id)
    if profile is None:
        raise SpecError(f"run {run_id}: no population profile under {population_dir(root, run_id)}; generate one with troupe population SPEC --size N")
    for table in profile.tables():
        out.print(table)
    out.print(escape(profile.summary()))
    for spec in sorted(population_dir(root, run_id).glob("*.spec.yaml")):
        out.print(escape(f"derived spec (edit and reuse it): {spec}"))


@app.command()
def population(
    spec: Annotated[Path, typer.Argument(help="Population spec (YAML/JSON with dimensions) or a TinyTroupe demography JSON.")],
    size: Annotated[int, typer.Option("--size", "-n", min=1, help="How many people to generate.")],
    seed: Annotated[int, typer.Option("--seed", help="Sampling seed: the same spec, size and seed give the same people.")] = 0,
    context: Annotated[Optional[str], typer.Option("--context", help="What these people have in common (default: the spec's).")] = None,
    datasets: DatasetsOption = None,
    run_id: Annotated[Optional[str], typer.Option("--run-id", help="Partition name (default: time + hash).")] = None,
    model: Annotated[Optional[str], typer.Option("--model", help="Model name (sets llm.model).")] = None,
    set_: Annotated[list[str], typer.Option("--set", help="Override a setting: section.key=value (repeatable).")] = [],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display; the summary only.")] = False,
    debug: DebugOption = False,
) -> None:
    """Generate a population as a run's personas, then print target vs achieved per dimension and the near-duplicate rate.

    Example: troupe population townsfolk.yaml --size 200 --seed 7
    """
    import tempfile

    import yaml

    from troupe.scenario import population_scenario

    with _errors(debug):
        document = population_scenario(spec, size, seed, context)  # a missing spec stops here
        with tempfile.TemporaryDirectory(prefix="troupe-population-") as folder:
            scenario = Path(folder) / f"{document['name']}.yaml"
            scenario.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
            summary = _run(scenario, datasets, run_id, _overrides(set_, model), quiet, False, debug)
        _print_population(Path(summary["datasets_root"]), summary["run_id"])


@app.command("show-population")
def show_population(
    run_id: Annotated[str, typer.Argument(help="A run that generated a population (troupe population, or a scenario's population:).")],
    datasets: DatasetsOption = None,
    debug: DebugOption = False,
) -> None:
    """Print a run's population profile again: target vs sampled vs achieved per dimension, near-duplicate rate.

    Example: troupe show-population 20250503-090000-1a2b3c
    """
    with _errors(debug):
        _print_population(_root(datasets), run_id)


# ----- report / export -----


def _write_report(root: Path, run_id: str, out_file: Path) -> None:
    from troupe.report import write_report

    written = write_report(root, run_id, out_file)
    charts = f" and {len(written) - 1} chart images beside it" if len(written) > 1 else ""
    out.print(escape(f"report of run {run_id} written to {written[-1]}{charts}"))


@app.command()
def report(
    run_id: Annotated[str, typer.Argument(help="The run to report on (see troupe runs).")],
    out_file: Annotated[Path, typer.Option("--out", "-o", help="Report file: .html (self-contained) or .md (PNG charts beside it).")],
    datasets: DatasetsOption = None,
    debug: DebugOption = False,
) -> None:
    """Write a report of a run: model, calls, tokens, cost, time, its results' key tables and charts.

    Example: troupe report 20250503-090000-1a2b3c --out report.html
    """
    with _errors(debug):
        _write_report(_root(datasets), run_id, out_file)


@app.command()
def export(
    run_id: Annotated[str, typer.Argument(help="The run to export (see troupe runs).")],
    fmt: Annotated[ExportFormat, typer.Option("--format", "-f", help="openai-chat (.jsonl), sharegpt (.json) or parquet (.parquet).")],
    out_file: Annotated[Path, typer.Option("--out", "-o", help="The file to write.")],
    per: Annotated[ExportPer, typer.Option("--per", help="One conversation per agent (its own view) or per world.")] = ExportPer.agent,
    calls: Annotated[bool, typer.Option("--calls", help="Export every LLM call's exact prompt and completion instead (needs [datasets] store_prompts = true).")] = False,
    datasets: DatasetsOption = None,
    debug: DebugOption = False,
) -> None:
    """Export a run's conversations as training data (system persona, user stimuli, assistant actions).

    Example: troupe export 20250503-090000-1a2b3c --format openai-chat --out train.jsonl
    """
    from troupe.export import export_run

    with _errors(debug):
        summary = export_run(_root(datasets), run_id, fmt, out_file, per, calls=calls)
        out.print(escape(f"{summary.conversations} conversations ({summary.messages} messages) written to {summary.out}"))


# ----- serve -----


@app.command()
def serve(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    cron: Annotated[Optional[str], typer.Option("--cron", help='Cron schedule, e.g. "0 3 * * *".')] = None,
    interval: Annotated[Optional[int], typer.Option("--interval", help="Run every this many seconds.")] = None,
    name: Annotated[Optional[str], typer.Option("--name", help="Deployment name (default: the scenario's name).")] = None,
    datasets: DatasetsOption = None,
    set_: Annotated[list[str], typer.Option("--set", help="Override a setting: section.key=value (repeatable).")] = [],
    debug: DebugOption = False,
) -> None:
    """Serve the scenario flow on a schedule from the Prefect API a run would use.

    That is PREFECT_API_URL when set, else troupe's background Prefect server ([prefect] server =
    auto, started if needed); the deployment and its runs appear in its UI. Stop serving with Ctrl-C.

    Example: troupe serve focus_group.yaml --cron "0 3 * * *"
    """
    from troupe.errors import ConfigError
    from troupe.scenario import load_scenario

    with _errors(debug):
        if (cron is None) == (interval is None):
            raise ConfigError("serve: give exactly one of --cron or --interval")
        loaded = load_scenario(scenario)
        overrides = _overrides(set_, None)
        from flows import scenario_flow, server
        from troupe.config import load_config

        api = server.resolve(load_config().with_overrides(overrides).prefect)
        parameters = {
            "scenario_path": str(scenario.resolve()),
            "datasets_root": str(_root(datasets).resolve()),
            "overrides": overrides,
        }
        deployment = name or loaded.scenario.name
        out.print(f"serving troupe-scenario/{deployment} ({'cron ' + cron if cron else f'every {interval} s'}); Ctrl-C stops")
        with server.using(api):
            scenario_flow.serve(name=deployment, cron=cron, interval=interval, parameters=parameters, print_starting_message=False)


# ----- server -----

server_app = typer.Typer(
    name="server",
    help="The local Prefect server that runs report to: start it, stop it, see whether it runs.",
    no_args_is_help=True,
)
app.add_typer(server_app)


def _prefect_config() -> Any:
    from troupe.config import load_config

    return load_config().prefect


def _server_addresses(state: Any) -> str:
    """Where a running server is reached and logs, as `start` and `status` both print it."""
    return f"UI: {state.url.removesuffix('/api')}   API: {state.url}   log: {state.log}"


@server_app.command("start")
def server_start(debug: DebugOption = False) -> None:
    """Start troupe's Prefect server in the background, or find it running; it stays until stopped.

    Runs without PREFECT_API_URL report to it ([prefect] server = auto); its home is [prefect] home
    (default ~/.troupe/prefect) and its port [prefect] port (default 4200).

    Example: troupe server start
    """
    from flows import server

    with _errors(debug):
        config = _prefect_config()
        state, started = server.start(config)
        if state is None:
            out.print(f"a Prefect server that troupe did not start answers at {server.api_url(config)}; runs use it")
            return
        out.print(f"Prefect server {'started' if started else 'already running'}: pid {state.pid}, home {state.home}")
        out.print(_server_addresses(state))


@server_app.command("stop")
def server_stop(debug: DebugOption = False) -> None:
    """Stop the Prefect server that `troupe server start` (or a run) started.

    Example: troupe server stop
    """
    from flows import server

    with _errors(debug):
        config = _prefect_config()
        state = server.stop(config)
        if state is None:
            out.print(f"no Prefect server of troupe's is running (home {server.home_dir(config)})")
        else:
            out.print(f"Prefect server stopped (pid {state.pid}, port {state.port})")


@server_app.command("status")
def server_status(debug: DebugOption = False) -> None:
    """Say whether troupe's Prefect server runs and where; exit 1 when it does not.

    Example: troupe server status
    """
    from flows import server

    with _errors(debug):
        config = _prefect_config()
        state = server.status(config)
        if state is None:
            other = " (another Prefect server answers on that port)" if server.healthy(server.api_url(config)) else ""
            out.print(f"not running: port {config.port}, home {server.home_dir(config)}{other}")
            raise typer.Exit(1)
        out.print(f"running since {state.started:%Y-%m-%d %H:%M:%S} UTC: pid {state.pid}, home {state.home}")
        out.print(_server_addresses(state))


def main() -> None:
    from flows import collector

    collector.for_the_command()  # before any command's imports, which allocate ~190,000 objects
    app()


if __name__ == "__main__":
    main()
