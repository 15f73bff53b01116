"""The ``troupe`` command, run for real against the fake OpenAI server and a real Prefect server.

Most commands run in-process with typer's CliRunner (fast: Prefect is imported once); the ones
whose point is the process boundary (a failed run's stderr, ``--debug`` tracebacks, ``serve``)
run as subprocesses. Two runs of the demo scenario are shared by the module: ``r1`` (progress and
transcript) and ``r2`` (quiet, a rerun served from the cache).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner, Result

import flows.cli as cli
from flows.cli import app
from tests.fake_openai import FakeOpenAI
from troupe.datasets import connect

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "troupe" / "examples" / "scenarios" / "demo.yaml"
DATASETS = ("personas", "events", "extractions", "llm_calls", "reduction_visits", "runs")
VIEWS = "runs, personas, events, extractions, llm_calls, failures, answers, population_profile, comparisons, reduction_visits"
COMMANDS = ("run", "demo", "validate", "sql", "runs", "show", "serve")

runner = CliRunner()


def llm_settings(fake: FakeOpenAI) -> list[str]:
    return ["--set", "llm.api_type=openai", "--set", f"llm.base_url={fake.url}", "--set", "llm.model=fake-model"]


def llm_env(fake: FakeOpenAI, home: Path) -> dict[str, str]:
    """The environment of a troupe subprocess: the fake server, and the fixture's PREFECT_API_URL."""
    assert os.environ.get("PREFECT_API_URL"), "the prefect_server fixture sets PREFECT_API_URL for subprocesses"
    return {
        **os.environ,
        "TROUPE_LLM__API_TYPE": "openai",
        "TROUPE_LLM__BASE_URL": fake.url,
        "TROUPE_LLM__MODEL": "fake-model",
        "PREFECT_HOME": str(home),
        "COLUMNS": "200",
    }


def troupe(*commands: list[str], env: dict[str, str] | None = None, timeout: float = 60) -> list[subprocess.CompletedProcess[str]]:
    """Run troupe commands side by side in subprocesses (each start imports troupe, and Prefect for a run)."""
    started = [
        (command, subprocess.Popen(
            [sys.executable, "-m", "flows.cli", *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO
        ))
        for command in commands
    ]
    results = []
    for command, process in started:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        results.append(subprocess.CompletedProcess(command, process.returncode, stdout, stderr))
    return results


def invoke(*args: str | Path, input: str | None = None) -> Result:
    return runner.invoke(app, [str(a) for a in args], input=input)


def summary_value(output: str, label: str) -> str:
    match = re.search(rf"│ {re.escape(label)}\s+│ (.+?)\s+│", output)
    assert match, f"no {label!r} row in the summary:\n{output}"
    return match.group(1)


def assert_one_line_error(result: Result | subprocess.CompletedProcess[str], code: int, *fragments: str) -> str:
    """Exit code, no traceback, and exactly one non-empty stderr line: 'error: ...' with the fragments."""
    exit_code = result.exit_code if isinstance(result, Result) else result.returncode
    stdout, stderr = result.stdout, result.stderr
    assert exit_code == code, f"exit {exit_code}\nstdout: {stdout}\nstderr: {stderr}"
    assert "Traceback" not in stdout + stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """The summary table wraps long paths at 80 columns; a wide console keeps rows on one line."""
    monkeypatch.setattr(cli.out, "width", 200)


@dataclass
class DemoRuns:
    root: Path
    first: Result
    rerun: Result
    calls_first: int
    calls_rerun: int


@pytest.fixture(scope="module")
def demo_runs(prefect_server: str, fake_server: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRuns]:
    """The demo run twice in one dataset root: r1 with progress and transcript, then r2 --quiet."""
    fake_server.reset()
    root = tmp_path_factory.mktemp("cli-datasets")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cli.out, "width", 200)
        first = invoke("run", DEMO, "--datasets", root, "--run-id", "r1", "--transcript", *llm_settings(fake_server))
        calls_first = fake_server.calls
        rerun = invoke("run", DEMO, "--datasets", root, "--run-id", "r2", "--quiet", *llm_settings(fake_server))
    yield DemoRuns(root, first, rerun, calls_first, fake_server.calls)


# ----- run -----


def test_run_prints_a_summary_and_writes_the_datasets(demo_runs: DemoRuns) -> None:
    result, root = demo_runs.first, demo_runs.root
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "run r1 (cafe-demo): completed" in out
    assert re.fullmatch(r"\d+\.\d s", summary_value(out, "wall time"))
    calls = int(summary_value(out, "LLM calls"))
    assert calls == demo_runs.calls_first > 0  # every request the fake server saw is counted
    assert summary_value(out, "cache hits") == "0"
    prompt, completion = re.fullmatch(r"(\d+) prompt \+ (\d+) completion", summary_value(out, "tokens")).groups()  # type: ignore[union-attr]
    assert int(prompt) > 0 and int(completion) > 0
    assert re.fullmatch(r"\$0\.\d{4}", summary_value(out, "cost")) and summary_value(out, "cost") != "$0.0000"
    assert summary_value(out, "datasets") == str(root.resolve())

    connection = connect(root)
    try:
        for dataset in DATASETS:
            rows = int(summary_value(out, f"rows: {dataset}"))
            assert list((root / dataset / "run_id=r1").glob("*.parquet")), f"{dataset}: no Parquet file"
            counted = connection.execute(f"SELECT count(*) FROM {dataset} WHERE run_id = 'r1'").fetchone()[0]
            assert counted == rows, dataset
        assert int(summary_value(out, "rows: personas")) == 2
        assert int(summary_value(out, "rows: extractions")) == 2
        assert int(summary_value(out, "rows: llm_calls")) == calls
        run_row = connection.execute("SELECT status, calls, cache_hits, model FROM runs WHERE run_id = 'r1'").fetchone()
        assert run_row == ("completed", calls, 0, "fake-model")
    finally:
        connection.close()
    assert f"WHERE run_id = 'r1'\" --datasets {root}" in out


def test_runs_in_process_leave_the_callers_garbage_collector_alone(demo_runs: DemoRuns) -> None:
    """Only the troupe command's own process freezes its objects and collects less often (flows/collector.py):
    objects frozen in a long-lived caller (a notebook, this test process) would never be collected."""
    import gc

    assert demo_runs.first.exit_code == 0 and demo_runs.rerun.exit_code == 0
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold()[0] < 50_000


def test_run_shows_progress_and_the_transcript(demo_runs: DemoRuns) -> None:
    result = demo_runs.first
    assert result.exit_code == 0, result.output
    for stage, total in (("personas", 2), ("simulate", 2), ("extract", 1), ("reduce", 1)):
        assert re.search(rf"^{stage}\s.*{total}/{total} calls {demo_runs.calls_first}  cache hits 0", result.stderr, re.M), result.stderr
    out = result.stdout
    assert "── Cafe step 1 of 2 ──" in out and "── Cafe step 2 of 2 ──" in out
    assert out.index("Cafe step 1 of 2") < out.index("Cafe step 2 of 2") < out.index("run r1 (cafe-demo)")
    assert "Waiter --> Ana: [CONVERSATION]" in out and "Waiter --> Ben: [CONVERSATION]" in out
    assert "> A new bakery opened next door." in out
    assert re.search(r"^(Ana|Ben) acts: \[", out, re.M)


def test_rerun_is_served_from_the_cache_and_quiet(demo_runs: DemoRuns) -> None:
    result = demo_runs.rerun
    assert result.exit_code == 0, result.output
    assert demo_runs.calls_rerun == demo_runs.calls_first  # the fake server saw no new request
    out = result.stdout
    assert "run r2 (cafe-demo): completed" in out
    assert summary_value(out, "LLM calls") == "0"
    assert int(summary_value(out, "cache hits")) == demo_runs.calls_first
    assert summary_value(out, "tokens") == "0 prompt + 0 completion"
    assert summary_value(out, "cost") == "$0.0000"
    assert summary_value(out, "rows: events") == summary_value(demo_runs.first.stdout, "rows: events")
    # --quiet: no progress bars and no transcript, but the summary
    assert result.stderr.strip() == ""
    assert "━" not in result.output and "cache hits 0" not in result.output
    assert "Cafe step" not in out and "-->" not in out


def test_demo_runs_the_packaged_scenario_with_its_transcript(prefect_server: str, fake: FakeOpenAI, tmp_path: Path) -> None:
    env = {"TROUPE_LLM__API_TYPE": "openai", "TROUPE_LLM__BASE_URL": fake.url, "TROUPE_LLM__MODEL": "fake-model"}
    result = runner.invoke(app, ["demo", "--datasets", str(tmp_path)], env=env)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "── Cafe step 1 of 2 ──" in out and "Waiter --> Ana: [CONVERSATION]" in out
    run_id = re.search(r"run (\d{8}-\d{6}-[0-9a-f]{6}) \(cafe-demo\): completed", out).group(1)  # type: ignore[union-attr]
    assert int(summary_value(out, "LLM calls")) == fake.calls > 0
    assert list((tmp_path / "extractions" / f"run_id={run_id}").glob("*.parquet"))


def test_a_failed_run_is_one_line_and_exit_1(prefect_server: str, fake: FakeOpenAI, tmp_path: Path) -> None:
    """The fake server answers 401 to everything: exit 1, one line, and the run is recorded as failed."""
    fake.fail_next(1000, status=401)
    env = llm_env(fake, tmp_path / "prefect-home")
    run = ["run", str(DEMO), "--quiet", "--datasets"]
    result, debug = troupe([*run, str(tmp_path / "a"), "--run-id", "broken"], [*run, str(tmp_path / "b"), "--debug"], env=env)
    assert_one_line_error(result, 1, "401", "check the API key")
    assert result.stdout == ""
    assert 0 < fake.calls < 100  # authentication errors are not retried over and over
    listed = invoke("runs", "--datasets", tmp_path / "a")
    assert listed.exit_code == 0
    assert re.search(r"^│ broken\s+│ cafe-demo\s+│ failed ", listed.stdout, re.M), listed.stdout

    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr
    assert "LLMAuthError" in debug.stderr


@pytest.mark.parametrize(
    ("setting", "fragments"),
    [
        ("llm.temperature", ("--set llm.temperature: expected section.key=value",)),
        ("temperature=0.2", ("--set temperature=0.2: expected section.key=value",)),
        ("llm.nope=1", ("llm.nope: unknown key", "keys of [llm]: api_type")),
        ("llm.temperature=hot", ("llm.temperature: 'hot' is not a valid float",)),
    ],
)
def test_a_bad_set_is_one_line_and_exit_2(prefect_server: str, fake: FakeOpenAI, tmp_path: Path, setting: str, fragments: tuple[str, ...]) -> None:
    result = invoke("run", DEMO, "--datasets", tmp_path, *llm_settings(fake), "--set", setting)
    assert_one_line_error(result, 2, *fragments)
    assert fake.calls == 0 and not (tmp_path / "runs").exists()  # stopped before the flow ran


@pytest.fixture
def bad_scenarios(tmp_path: Path) -> dict[str, Path]:
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: broken\npersonas: [\n  - builder: lisa\n")
    stranger = tmp_path / "stranger.yaml"
    stranger.write_text(DEMO.read_text().replace("  - name: Cafe\n", "  - name: Cafe\n    agents: [Ana, Zed]\n"))
    return {"yaml": broken, "persona": stranger}


@pytest.mark.parametrize(("kind", "fragments"), [("yaml", ("broken.yaml", "invalid YAML")), ("persona", ("stranger.yaml: worlds[0].agents[1]", "no persona is named 'Zed'", "use one of: Ana, Ben"))])
def test_a_bad_scenario_is_one_line_and_exit_2(
    prefect_server: str, fake: FakeOpenAI, tmp_path: Path, bad_scenarios: dict[str, Path], kind: str, fragments: tuple[str, ...]
) -> None:
    result = invoke("run", bad_scenarios[kind], "--datasets", tmp_path / "data", *llm_settings(fake))
    assert_one_line_error(result, 2, *fragments)
    assert fake.calls == 0 and not (tmp_path / "data").exists()
    assert_one_line_error(invoke("validate", bad_scenarios[kind]), 2, *fragments)


def test_errors_are_one_line_in_a_real_process_and_debug_shows_the_traceback(bad_scenarios: dict[str, Path]) -> None:
    stranger = str(bad_scenarios["persona"])
    plain, debug, missing = troupe(["validate", stranger], ["validate", stranger, "--debug"], ["run", stranger + ".missing"])
    assert_one_line_error(plain, 2, "no persona is named 'Zed'")
    assert debug.returncode != 0
    assert "Traceback (most recent call last)" in debug.stderr and "SpecError" in debug.stderr
    assert_one_line_error(missing, 2, "stranger.yaml.missing: no such scenario file")


# ----- validate -----


def test_validate_accepts_the_demo() -> None:
    result = invoke("validate", DEMO)
    assert result.exit_code == 0, result.output
    assert re.search(r"demo\.yaml: valid: 2 personas; worlds Cafe \(2 steps\); hash [0-9a-f]{12}", result.stdout), result.stdout


# ----- sql -----

QUERY = "SELECT run_id, calls, cache_hits FROM runs ORDER BY run_id"


def expected_rows(demo_runs: DemoRuns) -> list[dict[str, object]]:
    calls = demo_runs.calls_first
    return [{"run_id": "r1", "calls": calls, "cache_hits": 0}, {"run_id": "r2", "calls": 0, "cache_hits": calls}]


def test_sql_table(demo_runs: DemoRuns) -> None:
    result = invoke("sql", QUERY, "--datasets", demo_runs.root)
    assert result.exit_code == 0, result.output
    rows = re.findall(r"│ (r\d)\s+│ (\d+)\s+│ (\d+)\s+│", result.stdout)
    assert rows == [(r["run_id"], str(r["calls"]), str(r["cache_hits"])) for r in expected_rows(demo_runs)]
    assert "run_id" in result.stdout and "2 rows" in result.stdout


def test_sql_csv_to_stdout_and_file(demo_runs: DemoRuns, tmp_path: Path) -> None:
    expected = [["run_id", "calls", "cache_hits"], *([str(v) for v in r.values()] for r in expected_rows(demo_runs))]
    result = invoke("sql", QUERY, "--datasets", demo_runs.root, "--format", "csv")
    assert result.exit_code == 0, result.output
    assert list(csv.reader(io.StringIO(result.stdout))) == expected
    target = tmp_path / "runs.csv"
    result = invoke("sql", QUERY, "--datasets", demo_runs.root, "-f", "csv", "--out", target)
    assert result.exit_code == 0 and result.stdout == ""
    assert list(csv.reader(io.StringIO(target.read_text()))) == expected


def test_sql_json(demo_runs: DemoRuns, tmp_path: Path) -> None:
    result = invoke("sql", QUERY, "--datasets", demo_runs.root, "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == expected_rows(demo_runs)
    target = tmp_path / "runs.json"
    assert invoke("sql", QUERY, "--datasets", demo_runs.root, "-f", "json", "-o", target).exit_code == 0
    assert json.loads(target.read_text()) == expected_rows(demo_runs)


def test_sql_parquet(demo_runs: DemoRuns, tmp_path: Path) -> None:
    target = tmp_path / "runs.parquet"
    result = invoke("sql", QUERY, "--datasets", demo_runs.root, "--format", "parquet", "--out", target)
    assert result.exit_code == 0, result.output
    assert f"2 rows written to {target}" in result.stdout
    assert pq.read_table(target).to_pylist() == expected_rows(demo_runs)
    no_file = invoke("sql", QUERY, "--datasets", demo_runs.root, "--format", "parquet")
    assert_one_line_error(no_file, 2, "--format parquet: needs --out")


def test_sql_prints_values_literally(tmp_path: Path) -> None:
    """Values and column names that look like rich markup are printed as they are."""
    result = invoke("sql", "SELECT '[/x] [llm] [bold]b' AS \"[c]\"", "--datasets", tmp_path)
    assert result.exit_code == 0, result.output
    assert "[/x] [llm] [bold]b" in result.stdout and "[c]" in result.stdout


def test_sql_interactive_prompt(demo_runs: DemoRuns) -> None:
    result = invoke("sql", "--datasets", demo_runs.root, input="SELECT * FROM nope\nSELECT count(*) AS n FROM runs\n\nSELECT 42\n")
    assert result.exit_code == 0, result.output
    assert f"views: {VIEWS}." in result.stdout
    assert result.stdout.count("sql> ") == 3  # two queries, then the empty line ends it
    assert re.search(r"┃ n ┃.*│ 2 │", result.stdout, re.S), result.stdout
    # SELECT 42 came after the empty line: no table of it (the datasets path may hold "42", e.g. pytest-420).
    assert "┃ 42 ┃" not in result.stdout and "│ 42 │" not in result.stdout
    assert "error: SQL: Catalog Error: Table with name nope does not exist" in result.stderr  # and the prompt went on


@pytest.mark.parametrize(
    ("query", "fragments"),
    [
        ("SELECT * FROM nope", ("Table with name nope does not exist", f"the views are {VIEWS}")),
        ("DELETE FROM runs", ("DELETE statements are not allowed", "use SELECT")),
        ("CREATE TABLE t AS SELECT 1", ("CREATE statements are not allowed",)),
        ("SELECT 1; SELECT 2", ("expected one statement, got 2",)),
        ("SELECT * FROM read_csv('/etc/passwd')", ('Cannot access file "/etc/passwd"',)),
    ],
)
def test_sql_errors_are_one_line_and_exit_2(demo_runs: DemoRuns, query: str, fragments: tuple[str, ...]) -> None:
    assert_one_line_error(invoke("sql", query, "--datasets", demo_runs.root), 2, *fragments)


# ----- runs / show -----


def test_runs_lists_newest_first(demo_runs: DemoRuns) -> None:
    result = invoke("runs", "--datasets", demo_runs.root)
    assert result.exit_code == 0, result.output
    rows = re.findall(r"^│ (\S+)\s+│ cafe-demo\s+│ (\w+)\s+│.*│ fake-model\s+│ (\d+)\s+│ (\d+)\s+│", result.stdout, re.M)
    calls = str(demo_runs.calls_first)
    assert rows == [("r2", "completed", "0", calls), ("r1", "completed", calls, "0")], result.stdout
    assert "2 rows" in result.stdout


def test_runs_are_ordered_by_time_not_by_the_second(tmp_path: Path) -> None:
    """Runs started within the same second are still listed newest first."""
    from troupe.datasets import write_partition
    from troupe.datasets.rows import runs_table

    for run_id, millis in (("a", 100), ("b", 900), ("c", 500)):
        started = datetime(2025, 5, 3, 9, 0, 0, millis * 1000, tzinfo=timezone.utc)
        row = {"scenario": "s", "status": "completed", "started": started, "finished": started, "model": "m"}
        write_partition(tmp_path, "runs", run_id, runs_table(row))
    result = invoke("runs", "--datasets", tmp_path)
    assert result.exit_code == 0, result.output
    assert re.findall(r"^│ ([abc]) ", result.stdout, re.M) == ["b", "c", "a"]


def test_runs_never_cuts_the_run_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """At 80 columns the other columns shrink; the run id stays whole on one line, ready for troupe show."""
    from troupe.datasets import write_partition
    from troupe.datasets.rows import runs_table

    run_id = "20261201-150945-b6b3ac"
    started = datetime(2026, 12, 1, 15, 9, 45, tzinfo=timezone.utc)
    row = {"scenario": "a-scenario-with-a-long-name", "status": "completed", "started": started, "finished": started, "model": "gpt-4o-mini-2024-07-18"}
    write_partition(tmp_path, "runs", run_id, runs_table(row))
    monkeypatch.setattr(cli.out, "width", 80)
    result = invoke("runs", "--datasets", tmp_path)
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    assert re.search(rf"^│ {run_id} │", result.stdout, re.M), result.stdout


INTERVALS = "SELECT INTERVAL 90 MINUTE AS wait, INTERVAL '1 month 2 days' AS span, CAST(NULL AS INTERVAL) AS missing"


def test_sql_prints_intervals_as_text(tmp_path: Path) -> None:
    table = invoke("sql", INTERVALS, "--datasets", tmp_path)
    assert table.exit_code == 0, table.output
    assert re.search(r"│ 01:30:00 │ 1 month 2 days │\s+│", table.stdout), table.stdout
    assert "MonthDayNano" not in table.stdout
    as_csv = invoke("sql", INTERVALS, "--datasets", tmp_path, "--format", "csv")
    assert as_csv.exit_code == 0, as_csv.output
    assert list(csv.reader(io.StringIO(as_csv.stdout))) == [["wait", "span", "missing"], ["01:30:00", "1 month 2 days", ""]]
    as_json = invoke("sql", INTERVALS, "--datasets", tmp_path, "--format", "json")
    assert json.loads(as_json.stdout) == [{"wait": "01:30:00", "span": "1 month 2 days", "missing": None}]


def test_show_renders_the_transcript_from_events(demo_runs: DemoRuns) -> None:
    result = invoke("show", "r1", "--datasets", demo_runs.root)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "── Cafe step 1 of 2 ──" in out and "── Cafe step 2 of 2 ──" in out
    assert "Waiter --> Ana: [CONVERSATION]" in out and "Waiter --> Ben: [CONVERSATION]" in out

    def conversation(text: str) -> list[str]:
        lines = [line.strip() for line in text.splitlines() if " --> " in line or " acts: [" in line or line.startswith("          ")]
        return [line for line in lines if line]

    live = demo_runs.first.stdout.split("run r1 (cafe-demo)")[0]
    assert conversation(out) == conversation(live)  # the same transcript the run printed as it happened
    # the cached rerun has the same events
    assert conversation(invoke("show", "r2", "--datasets", demo_runs.root).stdout) == conversation(out)


def test_show_an_unknown_run_is_one_line_and_exit_2(demo_runs: DemoRuns) -> None:
    assert_one_line_error(invoke("show", "nope", "--datasets", demo_runs.root), 2, "run nope: no events", "troupe runs")


# ----- serve -----


def read_deployment(name: str, servers: list[subprocess.Popen[str]], timeout: float = 60) -> object:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            try:
                return client.read_deployment_by_name(f"troupe-scenario/{name}")
            except ObjectNotFound:
                pass
            for server in servers:
                assert server.poll() is None, f"troupe serve exited {server.returncode}: {server.stderr.read() if server.stderr else ''}"
            assert time.monotonic() < deadline, f"deployment troupe-scenario/{name} did not appear"
            time.sleep(0.3)


def stop(process: subprocess.Popen[str]) -> tuple[str, str]:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            return process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.communicate()


def test_serve_registers_scheduled_deployments(prefect_server: str, fake: FakeOpenAI, tmp_path: Path) -> None:
    env = llm_env(fake, tmp_path / "prefect-home")
    datasets = tmp_path / "served"
    interval_name, cron_name = f"cli-interval-{os.getpid()}", f"cli-cron-{os.getpid()}"
    settings = ["--set", "llm.temperature=0.25"]
    command = [sys.executable, "-m", "flows.cli", "serve"]
    servers = [
        subprocess.Popen(
            [*command, str(DEMO), "--interval", "3600", "--name", interval_name, "--datasets", str(datasets), *settings],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
        ),
        subprocess.Popen(  # a relative scenario path and dataset root, resolved against the working directory
            [*command, os.path.relpath(DEMO, REPO), "--cron", "0 3 * * *", "--name", cron_name, "--datasets", "data"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
        ),
    ]
    try:
        interval = read_deployment(interval_name, servers)
        cron = read_deployment(cron_name, servers)
    finally:
        outputs = [stop(server) for server in servers]

    [schedule] = interval.schedules  # type: ignore[attr-defined]
    assert schedule.active and schedule.schedule.interval == timedelta(seconds=3600)
    assert interval.parameters == {  # type: ignore[attr-defined]
        "scenario_path": str(DEMO), "datasets_root": str(datasets.resolve()), "overrides": {"llm.temperature": "0.25"}
    }
    [schedule] = cron.schedules  # type: ignore[attr-defined]
    assert schedule.schedule.cron == "0 3 * * *"
    assert cron.parameters["scenario_path"] == str(DEMO)  # type: ignore[attr-defined]
    assert cron.parameters["datasets_root"] == str(REPO / "data")  # type: ignore[attr-defined]
    assert f"serving troupe-scenario/{interval_name} (every 3600 s)" in outputs[0][0]
    assert f"serving troupe-scenario/{cron_name} (cron 0 3 * * *)" in outputs[1][0]
    for stdout, stderr in outputs:
        assert "Traceback" not in stdout + stderr


@pytest.mark.parametrize("schedule", [[], ["--cron", "0 3 * * *", "--interval", "60"]])
def test_serve_needs_exactly_one_schedule(schedule: list[str]) -> None:
    assert_one_line_error(invoke("serve", DEMO, *schedule), 2, "give exactly one of --cron or --interval")


@pytest.mark.timeout(60)  # it would serve until stopped if the input were not checked first
def test_serve_checks_its_input_before_serving(bad_scenarios: dict[str, Path]) -> None:
    assert_one_line_error(invoke("serve", bad_scenarios["persona"], "--interval", "60"), 2, "no persona is named 'Zed'")
    assert_one_line_error(invoke("serve", DEMO, "--interval", "60", "--set", "llm.nope=1"), 2, "llm.nope: unknown key")


# ----- help -----


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command: str) -> None:
    result = invoke(command, "--help")
    assert result.exit_code == 0, result.output
    assert f"Example: troupe {command}" in result.stdout


@pytest.mark.parametrize("command", ["start", "stop", "status"])
def test_every_server_command_has_help_with_an_example(command: str) -> None:
    result = invoke("server", command, "--help")
    assert result.exit_code == 0, result.output
    assert f"Example: troupe server {command}" in result.stdout


def test_the_top_level_help_lists_every_command() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for command in (*COMMANDS, "server"):
        assert re.search(rf"│ {command}\s", result.stdout), command
