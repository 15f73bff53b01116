"""`troupe run` answers a run that repeats a completed one with that run, without starting Prefect.

The first runs go through the real flow (the fake server, the session's Prefect server); the
reuse checks run `troupe run` in subprocesses pointed at a Prefect API nobody listens on, so a
reused run that touched Prefect at all would fail or hang.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port, sql
from tests.fake_openai import FakeOpenAI
from tests.test_cli import DEMO, REPO, invoke, llm_settings, summary_value


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    import flows.cli as cli

    monkeypatch.setattr(cli.out, "width", 200)


def without_prefect(fake: FakeOpenAI, root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`troupe run DEMO` in a process whose Prefect API is a closed port."""
    env = {**os.environ, "PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api", "COLUMNS": "200"}
    command = [sys.executable, "-m", "flows.cli", "run", str(DEMO), "--datasets", str(root), *llm_settings(fake), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO, timeout=60)


def run_ids(root: Path) -> list[str]:
    return sorted(row[0] for row in sql(root, "SELECT run_id FROM runs"))


@pytest.fixture
def first(prefect_server: str, fake: FakeOpenAI, tmp_path: Path) -> tuple[Path, str, int]:
    """The demo run once through the flow, under its default run id."""
    result = invoke("run", DEMO, "--datasets", tmp_path, "--quiet", *llm_settings(fake))
    assert result.exit_code == 0, result.output
    run_id = re.search(r"run (\S+) \(cafe-demo\): completed", result.stdout).group(1)  # type: ignore[union-attr]
    assert "reused" not in result.stdout
    return tmp_path, run_id, fake.calls


def test_the_same_run_again_is_the_completed_run(first: tuple[Path, str, int], fake: FakeOpenAI) -> None:
    root, run_id, calls = first
    for args in ((), ("--run-id", run_id), ("--set", "llm.max_concurrency=3")):  # default id, its own id, a speed setting
        result = without_prefect(fake, root, *args)
        assert result.returncode == 0, result.stderr
        assert f"run {run_id} (cafe-demo): completed (reused" in result.stdout
        assert summary_value(result.stdout, "LLM calls") == "0"
        events = sql(root, f"SELECT count(*) FROM events WHERE run_id = '{run_id}'")[0][0]
        assert int(summary_value(result.stdout, "rows: events")) == events > 0
    assert fake.calls == calls
    assert run_ids(root) == [run_id]  # nothing new was written


def test_a_change_that_shapes_results_runs_again(first: tuple[Path, str, int], fake: FakeOpenAI) -> None:
    root, run_id, _ = first
    result = invoke("run", DEMO, "--datasets", root, "--quiet", "--set", "llm.temperature=0.2", *llm_settings(fake))
    assert result.exit_code == 0, result.output
    assert "reused" not in result.stdout
    assert len(run_ids(root)) == 2
    keys = sql(root, "SELECT count(DISTINCT run_key) FROM runs")[0][0]
    assert keys == 2


def test_rerun_another_run_id_or_no_cache_go_through_the_flow(first: tuple[Path, str, int], fake: FakeOpenAI) -> None:
    root, run_id, calls = first
    for args in (("--rerun", "--run-id", "again"), ("--run-id", "other"), ("--set", "cache.enabled=false", "--run-id", "fresh")):
        result = invoke("run", DEMO, "--datasets", root, "--quiet", *args, *llm_settings(fake))
        assert result.exit_code == 0, result.output
        assert "reused" not in result.stdout
    assert run_ids(root) == sorted([run_id, "again", "other", "fresh"])
    assert fake.calls > calls  # cache.enabled=false paid again; the others came from the caches
    keys = {row[0]: row[1] for row in sql(root, "SELECT run_id, run_key FROM runs")}
    assert keys["again"] == keys["other"] == keys[run_id]


def test_a_run_with_an_unreadable_partition_is_not_reused(first: tuple[Path, str, int], fake: FakeOpenAI) -> None:
    from flows import preflight, reuse

    root, run_id, _ = first
    overrides = {"llm.api_type": "openai", "llm.base_url": fake.url, "llm.model": "fake-model"}
    loaded, config = preflight.check_run(DEMO, root, None, overrides, endpoint=False)
    assert reuse.reusable(loaded, config, None).run_id == run_id  # type: ignore[union-attr]
    (root / "events" / f"run_id={run_id}" / "broken.parquet").write_bytes(b"not parquet")
    assert reuse.reusable(loaded, config, None) is None
