"""Bad input stops at the front door: exit 2, one line naming the file, field or variable, nothing written.

The corpus is ``tests/data/bad/*.yaml``: each file's first line says what its error must contain
(``# expect: fragment | fragment``); adding a case is adding a file. Inputs that are not files
(``--set``, ``./config.ini``, the environment, credentials, the endpoint, the dataset root, the
run id) are the table below. Every case runs through the real CLI (typer's runner in-process,
or a subprocess where the point is the process: a read-only mount) against the fake OpenAI server
and a real Prefect server, and checks that no LLM call was made, no flow run was created and no
file or folder appeared under the dataset root or the cache.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest
from typer.testing import CliRunner, Result

from flows import preflight
from flows.cli import app
from tests.conftest import free_port
from tests.fake_openai import FakeOpenAI
from troupe.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
BAD = REPO / "tests" / "data" / "bad"
DEMO = REPO / "troupe" / "examples" / "scenarios" / "demo.yaml"
CORPUS = sorted(BAD.glob("*.yaml"))

runner = CliRunner()


def expected(path: Path) -> list[str]:
    """The fragments a corpus file's error must contain, from its first line."""
    first = path.read_bytes().split(b"\n", 1)[0].decode("ascii")
    assert first.startswith("# expect: "), f"{path.name}: the first line must be '# expect: ...'"
    return [fragment.strip() for fragment in first.removeprefix("# expect: ").split(" | ")]


def llm_settings(fake: FakeOpenAI) -> list[str]:
    return ["--set", "llm.api_type=openai", "--set", f"llm.base_url={fake.url}", "--set", "llm.model=fake-model"]


def flow_runs() -> int:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return len(client.read_flow_runs())


def error_line(result: Result | subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exit 2, no traceback, exactly one stderr line 'error: ...' containing every fragment."""
    code = result.exit_code if isinstance(result, Result) else result.returncode
    assert code == 2, f"exit {code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert "Traceback" not in result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]


def tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*")) if path.is_dir() else []


@pytest.fixture
def before(prefect_server: str, fake: FakeOpenAI) -> int:
    """Flow runs on the Prefect server before the case: no case may add one."""
    return flow_runs()


# ----- the corpus: bad scenario files -----


def test_the_corpus_has_at_least_25_cases() -> None:
    assert len(CORPUS) >= 25


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_a_bad_scenario_stops_run_and_validate(path: Path, before: int, fake: FakeOpenAI, tmp_path: Path) -> None:
    fragments = expected(path)
    root = tmp_path / "datasets"
    line = error_line(runner.invoke(app, ["run", str(path), "--datasets", str(root), *llm_settings(fake)]), *fragments)
    assert str(path) in line or path.name in line or "personas/" in line  # the file is named
    assert fake.calls == 0 and not root.exists() and flow_runs() == before
    assert error_line(runner.invoke(app, ["validate", str(path)]), *fragments) == line


# ----- inputs that are not scenario files -----


@dataclass
class Case:
    """A bad input given as arguments, ./config.ini, environment variables or a dataset root."""

    args: list[str]
    fragments: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    config_ini: str | None = None
    root_file: str | None = None  # the dataset root (relative to it) is a file with this text
    llm: bool = True  # point at the fake server


CASES: dict[str, Case] = {
    "set_bad_value": Case(["--set", "llm.temperature=hot"], ("argument llm.temperature: 'hot' is not a valid float",)),
    "set_without_equals": Case(["--set", "llm.temperature"], ("--set llm.temperature: expected section.key=value",)),
    "set_unknown_key": Case(["--set", "llm.colour=red"], ("llm.colour: unknown key", "keys of [llm]")),
    "set_unknown_section": Case(["--set", "gpu.layers=3"], ("unknown section [gpu]",)),
    "set_negative_resamples": Case(["--set", "llm.max_resamples=-1"], ("llm.max_resamples: '-1' is not a valid int", "greater than or equal to 0")),
    "config_ini_syntax": Case([], ("config.ini: cannot parse", "fix the INI syntax"), config_ini="[llm\nmodel = x\n"),
    "config_ini_unknown_key": Case([], ("config.ini [llm] colour: unknown key",), config_ini="[llm]\ncolour = red\n"),
    "config_ini_bad_value": Case([], ("config.ini [simulation] seed: 'lucky' is not a valid int",), config_ini="[simulation]\nseed = lucky\n"),
    "env_bad_value": Case([], ("environment variable TROUPE_LLM__MAX_ATTEMPTS", "'many' is not a valid int"), env={"TROUPE_LLM__MAX_ATTEMPTS": "many"}),
    "openai_without_key": Case(["--set", "llm.api_type=openai"], ("OPENAI_API_KEY is not set", "export it"), llm=False),
    "azure_without_key": Case(["--set", "llm.api_type=azure"], ("AZURE_OPENAI_KEY is not set",), llm=False),
    "azure_without_endpoint": Case(["--set", "llm.api_type=azure"], ("AZURE_OPENAI_ENDPOINT is not set",), env={"AZURE_OPENAI_KEY": "k-123"}, llm=False),
    "local_model_missing": Case(["--set", "local.model_path=/nowhere/model.gguf"], ("[local] model_path: /nowhere/model.gguf does not exist",), llm=False),
    "root_is_a_file": Case([], ("is a file, not a directory",), root_file=""),
    "root_under_a_file": Case([], ("which is a file, not a directory",), root_file="sub"),
    "run_id_escapes": Case(["--run-id", "../../../../escaped"], ("--run-id '../../../../escaped'", "letters, digits, '.', '_' and '-'")),
    "run_id_dotdot": Case(["--run-id", ".."], ("--run-id '..'",)),
    "run_id_dot": Case(["--run-id", "."], ("--run-id '.'",)),
    "run_id_slash": Case(["--run-id", "a/b"], ("--run-id 'a/b'",)),
    "run_id_space": Case(["--run-id", "my run"], ("--run-id 'my run'",)),
    "run_id_empty": Case(["--run-id", ""], ("--run-id ''",)),
    "scenario_missing": Case(["SCENARIO=missing.yaml"], ("missing.yaml: no such scenario file",)),
    "scenario_is_a_directory": Case(["SCENARIO=."], ("is a directory, not a scenario file",)),
}


def _unreachable() -> list[str]:
    return ["--set", "llm.api_type=openai", "--set", f"llm.base_url=http://127.0.0.1:{free_port()}/v1", "--set", "llm.model=m"]


@pytest.mark.parametrize("name", list(CASES))
def test_a_bad_argument_or_environment_stops_the_run(
    name: str, before: int, fake: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = CASES[name]
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # ./config.ini is read from the working directory
    if case.config_ini is not None:
        (work / "config.ini").write_text(case.config_ini)
    root = tmp_path / "datasets"
    if case.root_file is not None:
        (tmp_path / "datasets").write_text("not a folder\n")
        root = tmp_path / "datasets" / case.root_file if case.root_file else root
    scenario, args = str(DEMO), []
    for arg in case.args:
        if arg.startswith("SCENARIO="):
            scenario = str(tmp_path / arg.removeprefix("SCENARIO="))
        else:
            args.append(arg)
    llm = llm_settings(fake) if case.llm else []
    result = runner.invoke(app, ["run", scenario, "--datasets", str(root), *llm, *args], env=case.env)
    error_line(result, *case.fragments)
    assert fake.calls == 0 and flow_runs() == before
    if case.root_file is None:
        assert not root.exists()
    else:
        assert (tmp_path / "datasets").read_text() == "not a folder\n"
    assert tree(tmp_path) == sorted(["work", *(["work/config.ini"] if case.config_ini else []), *(["datasets"] if case.root_file is not None else [])])


def test_an_unreachable_endpoint_stops_the_run(before: int, fake: FakeOpenAI, tmp_path: Path) -> None:
    root = tmp_path / "datasets"
    result = runner.invoke(app, ["run", str(DEMO), "--datasets", str(root), *_unreachable()])
    error_line(result, "[llm] base_url http://127.0.0.1:", "not answering", "preflight.check_endpoint=false")
    assert not root.exists() and flow_runs() == before


def test_the_cache_dir_must_be_writable_too(before: int, fake: FakeOpenAI, tmp_path: Path) -> None:
    (tmp_path / "cache").write_text("x")
    result = runner.invoke(app, ["run", str(DEMO), "--datasets", str(tmp_path / "d"), *llm_settings(fake), "--set", f"cache.dir={tmp_path / 'cache'}"])
    error_line(result, f"[cache] dir {tmp_path / 'cache'}: is a file")
    assert fake.calls == 0 and not (tmp_path / "d").exists() and flow_runs() == before


def test_a_read_only_dataset_root_stops_the_run(prefect_server: str, fake: FakeOpenAI, tmp_path: Path) -> None:
    """A real read-only mount (a bind mount remounted read-only in a private mount namespace)."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode != 0:
        pytest.skip("needs unshare with user and mount namespaces to make a read-only mount")
    frozen = tmp_path / "frozen"
    frozen.mkdir()
    command = [sys.executable, "-m", "flows.cli", "run", str(DEMO), "--datasets", str(frozen / "datasets"), *llm_settings(fake)]
    script = f'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" && shift && exec "$@"'
    before = flow_runs()
    result = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script, "sh", str(frozen), *command],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, "COLUMNS": "300"}, timeout=60,
    )
    error_line(result, f"--datasets {frozen / 'datasets'}", "Read-only file system", "choose a writable directory")
    assert fake.calls == 0 and tree(frozen) == [] and flow_runs() == before


# ----- validate: every problem, SQL bound against the datasets' columns -----


def test_validate_lists_every_problem_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "many.yaml"
    path.write_text(
        "name: many\ncolour: red\npersonas:\n  - persona: {name: Ana}\n"
        "worlds:\n  - {name: Cafe, steps: 0}\n  - {name: Bar, steps: two}\n"
    )
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 3 and all(line.startswith(f"error: {path}: ") for line in lines), result.stderr
    assert sorted(line.split(": ")[2] for line in lines) == ["colour", "worlds[0].steps", "worlds[1].steps"]


def test_validate_binds_every_reduction_against_the_datasets(tmp_path: Path) -> None:
    path = tmp_path / "sql.yaml"
    path.write_text(
        DEMO.read_text().split("reductions:")[0]
        + "reductions:\n"
        "  - {name: good, sql: 'SELECT would_visit, count(*) AS n FROM extractions GROUP BY would_visit'}\n"
        "  - {name: column, sql: 'SELECT nope FROM extractions'}\n"
        "  - {name: joined, sql: 'SELECT e.agent, p.age FROM events e JOIN personas p ON p.name = e.agent'}\n"
        "  - {name: table, sql: 'SELECT * FROM extraction'}\n"
        "  - {name: files, sql: \"SELECT * FROM read_csv('/etc/hostname')\"}\n"
    )
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 3, result.stderr
    assert "reductions[1].sql (column)" in lines[0] and '"nope"' in lines[0]
    assert "reductions[3].sql (table)" in lines[1] and "extraction" in lines[1]
    assert "reductions[4].sql (files)" in lines[2]
    assert all("the views are runs, personas, events, extractions, llm_calls" in line for line in lines)


def test_the_demo_passes_every_check_and_its_sql_binds(fake: FakeOpenAI, tmp_path: Path) -> None:
    loaded, problems = preflight.scenario_problems(DEMO)
    assert problems == [] and loaded is not None
    overrides = {"llm.api_type": "openai", "llm.base_url": fake.url}
    _, config = preflight.check_run(DEMO, tmp_path / "datasets", "ok-run_1.2", overrides)
    assert config.datasets.root == str(tmp_path / "datasets")
    assert tree(tmp_path) == []  # the checks wrote nothing, not even the root
    assert fake.calls == 0  # GET /models is not a chat call


def test_the_endpoint_check_can_be_skipped_for_a_cached_rerun(tmp_path: Path) -> None:
    unreachable = f"http://127.0.0.1:{free_port()}/v1"
    overrides = {"llm.api_type": "openai", "llm.base_url": unreachable}
    with pytest.raises(ConfigError, match="not answering"):
        preflight.check_run(DEMO, tmp_path / "d", None, overrides)
    preflight.check_run(DEMO, tmp_path / "d", None, {**overrides, "preflight.check_endpoint": "false"})


class _Models(BaseHTTPRequestHandler):
    """GET /v1/models answered with the server's status; a status of 0 means: accept, never answer."""

    def do_GET(self) -> None:
        status = self.server.status  # type: ignore[attr-defined]
        if not status:
            time.sleep(3)
            return
        body = json.dumps({"error": {"message": f"status {status}", "type": "x", "param": None, "code": None}}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def models_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Models)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _endpoint(server: ThreadingHTTPServer, status: int, **extra: str) -> dict[str, str]:
    server.status = status  # type: ignore[attr-defined]
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    return {"llm.api_type": "openai", "llm.base_url": url, **extra}


def test_a_refused_key_is_named_and_never_shown(models_server: ThreadingHTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret-123")
    with pytest.raises(ConfigError, match=r"^OPENAI_API_KEY: the endpoint at .* refused the key \(HTTP 401\); export a valid key$") as caught:
        preflight.check_run(DEMO, tmp_path / "d", None, _endpoint(models_server, 401))
    assert "sk-very-secret" not in str(caught.value)
    with pytest.raises(ConfigError, match=r"HTTP 403"):
        preflight.check_run(DEMO, tmp_path / "d", None, _endpoint(models_server, 403))
    assert tree(tmp_path) == []


def test_an_endpoint_without_a_models_route_still_answers(models_server: ThreadingHTTPServer, tmp_path: Path) -> None:
    for status in (404, 500):
        preflight.check_run(DEMO, tmp_path / "d", None, _endpoint(models_server, status))


def test_an_endpoint_that_never_answers_times_out(models_server: ThreadingHTTPServer, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"not answering \(timed out\)"):
        preflight.check_run(DEMO, tmp_path / "d", None, _endpoint(models_server, 0, **{"llm.timeout_s": "0.3"}))


def test_the_checks_load_no_prefect(tmp_path: Path) -> None:
    """Preflight runs before Prefect starts: it does not even import it, on a good or a bad scenario."""
    code = (
        "import sys; from pathlib import Path; from flows import preflight\n"
        f"preflight.check_run(Path({str(DEMO)!r}), Path({str(tmp_path / 'd')!r}), 'r1', {{}})\n"
        f"print(preflight.scenario_problems(Path({str(BAD / 'negative_steps.yaml')!r}))[1])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('prefect', 'openai')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode == 0, done.stderr
    problems, modules = done.stdout.splitlines()
    assert "worlds[0].steps" in problems and modules == "[]"
