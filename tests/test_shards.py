"""Pipelines at shard grain: task-run counts, keys that hold, resume after kill -9, per-item failures,
accounting that survives failure, faculties across task boundaries, deterministic part files.

Every flow runs for real on the session's Prefect server against the fake OpenAI server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Iterator

import polars as pl
import pytest
import yaml

from tests.fake_openai import FakeOpenAI
from tests.scripted import Script, done, kind_of, schema_of, talk, think, turn
from troupe.datasets import partition_dir
from troupe.datasets.io import run_staging

QUESTION = "Would you pay 4 euros for a croissant? Why?"


@pytest.fixture(autouse=True)
def _send_prefect_logs() -> Iterator[None]:
    yield
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)


def interviews(tmp_path: Path, people: int, *, steps: int = 1, name: str = "interviews", extraction: bool = True) -> Path:
    """A scenario of `people` isolated interviews (one world entry, kind: isolated)."""
    stimuli = [{"step": s, "kind": "listen", "source": "Interviewer", "content": f"{QUESTION} (question {s})"} for s in range(1, steps + 1)]
    scenario: dict[str, Any] = {
        "name": name,
        "config": {"simulation.max_turns_until_done": 1},
        "personas": [{"persona": {"name": f"Person {i:03d}", "age": 20 + i}} for i in range(people)],
        "worlds": [{"name": "Interview", "kind": "isolated", "steps": steps, "stimuli": stimuli}],
    }
    if extraction:
        scenario["extraction"] = {"objective": "Would they pay?", "fields": {"would_pay": {"type": "bool"}}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False), encoding="utf-8")
    return path


def answer(body: dict[str, Any]) -> dict[str, Any] | None:
    """A quiet interview answer (THINK then DONE): one call per person per step."""
    if kind_of(body) == "turn":
        return turn(think("Four euros is a lot."), done())
    return None  # extraction: the fake's schema-valid default


def overrides(fake: FakeOpenAI, **extra: Any) -> dict[str, str]:
    return {
        "llm.api_type": "openai", "llm.base_url": fake.url, "llm.model": "fake-model", "llm.timeout_s": "10",
        "simulation.transcript": "false", **{k: str(v) for k, v in extra.items()},
    }


def run(fake: FakeOpenAI, scenario: Path, root: Path, run_id: str, **extra: Any) -> dict[str, Any]:
    from flows import scenario_flow

    return scenario_flow(str(scenario), run_id=run_id, datasets_root=str(root), overrides=overrides(fake, **extra))


def task_states(flow_run_id: str, expected: int) -> list[str]:
    """The state names of the flow run's task runs, as Prefect's API has them (waits for all to arrive)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    deadline = time.monotonic() + 30
    with get_client(sync_client=True) as client:
        while True:
            runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
            names = [r.state.name for r in runs if r.state is not None and r.state.is_final()]
            if len(names) >= expected or time.monotonic() > deadline:
                return names
            time.sleep(0.25)


def read(root: Path, dataset: str, run_id: str) -> pl.DataFrame:
    """The run's rows of dataset, without the run_id column every file carries."""
    return pl.read_parquet(partition_dir(root, dataset, run_id) / "*.parquet").drop("run_id")


# ----- grain and keys -----


def test_a_sharded_run_has_tens_of_task_runs_not_one_per_person(prefect_server: str, fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.responder = answer
    scenario = interviews(tmp_path, 10)
    summary = run(fake, scenario, tmp_path / "data", "r1", **{"pipeline.shard_size": 4, "pipeline.window": 2})

    shards = 3  # 4 + 4 + 2 people
    assert summary["task_runs"] == shards * 3  # a personas task, one step, one extraction per shard
    assert summary["status"] == "completed" and fake.calls == 20
    assert summary["rows"]["events"] == 10 * 3 and summary["rows"]["extractions"] == 10  # heard, thought, done
    states = task_states(summary["flow_run_id"], summary["task_runs"])
    assert sorted(states) == ["Completed"] * summary["task_runs"]

    row = read(tmp_path / "data", "runs", "r1").to_dicts()[0]
    assert (row["task_runs"], row["failures"], row["calls"]) == (9, 0, 20)
    events = read(tmp_path / "data", "events", "r1")
    assert events["world"].n_unique() == 10 and set(events["world"]) == {f"Interview/Person {i:03d}" for i in range(10)}
    # Streaming: one part per shard and stage, not one file per person.
    parts = sorted(p.name for p in partition_dir(tmp_path / "data", "events", "r1").glob("*.parquet"))
    assert len(parts) == shards and all(p.startswith("part-simulate-s0000") for p in parts)
    assert not run_staging(tmp_path / "data", "r1").exists()  # the finished run's staging is gone


def test_changing_step_3_runs_only_the_tasks_of_steps_3_and_on(prefect_server: str, fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.responder = answer
    root = tmp_path / "data"
    first = run(fake, interviews(tmp_path, 4, steps=4), root, "before", **{"pipeline.shard_size": 2})
    assert first["task_runs"] == 2 * (1 + 4 + 1) and first["tasks_cached"] == 0

    data = yaml.safe_load((tmp_path / "interviews.yaml").read_text())
    data["worlds"][0]["stimuli"][2]["content"] = "And would you pay 5 euros?"
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(data, sort_keys=False))
    calls = fake.calls
    second = run(fake, changed, root, "after", **{"pipeline.shard_size": 2})

    # Per shard: personas, steps 1-2 from the cache; steps 3-4 and the extraction executed.
    assert second["task_runs"] == 12 and second["tasks_cached"] == 2 * 3
    states = task_states(second["flow_run_id"], 12)
    assert sorted(states) == sorted(["Cached"] * 6 + ["Completed"] * 6)
    assert fake.calls - calls == 4 * 2 + 4  # steps 3 and 4 of four people, and their extraction
    before, after = read(root, "events", "before"), read(root, "events", "after")
    key = ["world", "seq"]
    assert after.filter(pl.col("step") < 3).sort(key).equals(before.filter(pl.col("step") < 3).sort(key))


def test_the_same_inputs_give_byte_identical_part_files(prefect_server: str, fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.responder = answer
    root = tmp_path / "data"
    scenario = interviews(tmp_path, 5)
    datasets = ("personas", "events", "extractions", "failures")

    def files(run_id: str, dataset: str) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in partition_dir(root, dataset, run_id).glob("*.parquet")}

    run(fake, scenario, root, "one", **{"pipeline.shard_size": 2})
    first = {dataset: files("one", dataset) for dataset in datasets}
    run(fake, scenario, root, "one", **{"pipeline.shard_size": 2})  # every task from the cache, parts written again
    run(fake, scenario, root, "two", **{"pipeline.shard_size": 2})
    for dataset in datasets:
        assert first[dataset] and files("one", dataset) == first[dataset], dataset
        # another run id: the same part names and rows, apart from the run_id column
        one, two = files("one", dataset), files("two", dataset)
        assert one.keys() == two.keys(), dataset
        for name in one:
            a, b = pl.read_parquet(one[name]), pl.read_parquet(two[name])
            assert set(b["run_id"]) <= {"two"} and a.drop("run_id").equals(b.drop("run_id")), (dataset, name)


# ----- resume after kill -9 -----

_CHILD = textwrap.dedent(
    """
    import json, sys
    from flows import scenario_flow
    scenario, root, run_id, overrides = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    scenario_flow(scenario, run_id=run_id, datasets_root=root, overrides=overrides)
    """
)


def test_kill_9_then_rerun_keeps_finished_shards_and_pays_only_for_the_rest(
    prefect_server: str, fake: FakeOpenAI, tmp_path: Path
) -> None:
    fake.responder = answer
    fake.latency_s = 0.3
    root = tmp_path / "data"
    scenario = interviews(tmp_path, 12, extraction=False)
    settings = overrides(fake, **{"pipeline.shard_size": 2, "pipeline.window": 1})
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(scenario), str(root), "r1", json.dumps(settings)],
        cwd=Path(__file__).parent.parent, env={**os.environ, "PREFECT_API_URL": prefect_server},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    staged = run_staging(root, "r1") / "events"
    deadline = time.monotonic() + 120
    while len(list(staged.glob("part-*.parquet"))) < 2:
        assert child.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
        time.sleep(0.05)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    paid_before = fake.calls

    # A finished shard's part; a task attempt that failed (a timeout on a loaded machine, then retried
    # by Prefect) leaves a "-failed" part of the calls it paid, which is accounting, not a finished shard.
    finished = {
        p.name: (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in (run_staging(root, "r1") / "llm_calls").glob("part-*.parquet")
        if not p.name.endswith("-failed.parquet")
    }
    finished_calls = pl.read_parquet(run_staging(root, "r1") / "llm_calls" / "part-*.parquet").height
    assert finished and finished_calls < 12
    assert not partition_dir(root, "events", "r1").exists()  # readers see nothing of the killed run

    summary = run(fake, scenario, root, "r1", **{"pipeline.shard_size": 2, "pipeline.window": 1})
    paid_on_rerun = fake.calls - paid_before
    assert summary["status"] == "completed" and summary["rows"]["events"] == 12 * 3
    assert paid_on_rerun <= 12 - finished_calls  # unfinished and in flight only
    published = partition_dir(root, "llm_calls", "r1")
    for name, (inode, mtime) in finished.items():
        # Not rewritten: the published file is a link to the very part the killed run wrote.
        assert ((published / name).stat().st_ino, (published / name).stat().st_mtime_ns) == (inode, mtime)
    assert summary["tasks_cached"] >= len(finished)  # finished shards were not recomputed


# ----- per-item failures and accounting -----


class Flaky:
    """Answers every turn, except that Person 001's replies never match the schema while broken."""

    def __init__(self) -> None:
        self.broken = True

    def __call__(self, body: dict[str, Any]) -> dict[str, Any] | None:
        if kind_of(body) == "turn" and self.broken and "Person 001" in body["messages"][0]["content"]:
            return {"nothing": "useful"}
        return answer(body)


def test_a_failing_item_fails_alone_and_a_rerun_retries_only_it(prefect_server: str, fake: FakeOpenAI, tmp_path: Path) -> None:
    flaky = Flaky()
    fake.responder = flaky
    root = tmp_path / "data"
    scenario = interviews(tmp_path, 4)
    summary = run(fake, scenario, root, "r1", **{"pipeline.shard_size": 2})

    assert summary["status"] == "completed_with_failures" and summary["failures"] == 1
    failures = read(root, "failures", "r1").to_dicts()
    assert len(failures) == 1
    failure = failures[0]
    assert (failure["stage"], failure["world"], failure["agent"], failure["step"]) == ("simulate", "Interview/Person 001", "Person 001", 1)
    assert failure["error_type"] == "LLMStructuredOutputError" and failure["attempts"] >= 2
    row = read(root, "runs", "r1").to_dicts()[0]
    assert (row["status"], row["failures"]) == ("completed_with_failures", 1)
    events = read(root, "events", "r1")
    assert events.filter(pl.col("direction") == "action")["agent"].n_unique() == 3  # the others acted
    assert read(root, "extractions", "r1").height == 4

    flaky.broken = False
    calls = fake.calls
    again = run(fake, scenario, root, "r2", **{"pipeline.shard_size": 2})
    assert again["status"] == "completed" and again["failures"] == 0
    assert fake.calls - calls == 2  # Person 001's turn, and the extraction of the world it changed
    assert read(root, "failures", "r2").height == 0
    assert read(root, "events", "r2").filter(pl.col("direction") == "action")["agent"].n_unique() == 4


def test_a_failed_run_records_what_it_paid(prefect_server: str, fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.responder = Flaky()
    root = tmp_path / "data"
    with pytest.raises(Exception, match="did not match the schema"):
        run(fake, interviews(tmp_path, 4), root, "r1", **{"pipeline.on_item_error": "fail", "pipeline.shard_size": 2})
    row = read(root, "runs", "r1").to_dicts()[0]
    assert row["status"] == "failed" and row["error"].startswith("LLMStructuredOutputError")
    calls = read(root, "llm_calls", "r1")
    assert row["calls"] == calls.filter(~pl.col("cache_hit")).height > 0
    assert row["prompt_tokens"] == calls["prompt_tokens"].sum() > 0


def test_a_failure_never_replaces_a_completed_runs_row(tmp_path: Path) -> None:
    from troupe.datasets.io import write_run_row
    from troupe.datasets.rows import runs_table

    def row(status: str) -> Any:
        return runs_table({"scenario": "s", "status": status, "calls": 1})

    assert write_run_row(tmp_path, "r1", row("completed"), "completed")
    assert not write_run_row(tmp_path, "r1", row("failed"), "failed")
    assert pl.read_parquet(partition_dir(tmp_path, "runs", "r1") / "*.parquet")["status"].to_list() == ["completed"]


# ----- faculties survive task boundaries -----


class Notepad:
    name = "notepad"
    actions = {"WRITE_NOTE": "write a note to yourself; content = the note"}

    async def handle(self, agent: Any, action: Any) -> None:
        agent.think(f"Noted: {action.content}")


def test_a_faculty_survives_the_task_boundary(prefect_server: str, fake: FakeOpenAI, tmp_path: Path) -> None:
    from troupe.agent.person import register_faculty

    register_faculty("notepad", Notepad)
    note = {"type": "WRITE_NOTE", "content": "Buy milk.", "target": ""}
    Script({"Ana": [[talk("Hello."), done()], [note, done()]]}).install(fake)
    scenario = {
        "name": "notes",
        "config": {"simulation.max_turns_until_done": 1},
        "personas": [{"persona": {"name": "Ana"}}],
        "worlds": [{"name": "Desk", "steps": 2, "faculties": ["notepad"]}],
    }
    path = tmp_path / "notes.yaml"
    path.write_text(yaml.safe_dump(scenario))
    summary = run(fake, path, tmp_path / "data", "r1")
    assert summary["task_runs"] == 1 + 2  # personas, step 1, step 2: two task boundaries crossed

    turns = [body for body in fake.requests if kind_of(body) == "turn"]
    assert len(turns) == 2
    for body in turns:
        assert "WRITE_NOTE" in schema_of(body)["$defs"]["Action"]["properties"]["type"]["enum"]
    events = read(tmp_path / "data", "events", "r1").sort("seq")
    assert ("action", "WRITE_NOTE", "Buy milk.") in events.select("direction", "type", "content").rows()
    assert ("stimulus", "THOUGHT", "Noted: Buy milk.") in events.select("direction", "type", "content").rows()


# ----- interrupts -----


class Interrupting:
    """Answers like `answer`, and after `after` turns interrupts the main thread (as Ctrl-C does)."""

    def __init__(self, after: int) -> None:
        self.after, self.turns = after, 0

    def __call__(self, body: dict[str, Any]) -> dict[str, Any] | None:
        import _thread

        if kind_of(body) == "turn":
            self.turns += 1
            if self.turns == self.after:
                _thread.interrupt_main()
        return answer(body)


def test_an_interrupted_run_is_recorded_as_cancelled_with_what_it_paid(prefect_server: str, fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.responder = Interrupting(after=3)
    fake.latency_s = 0.05
    root = tmp_path / "data"
    with pytest.raises(KeyboardInterrupt):
        run(fake, interviews(tmp_path, 8, extraction=False), root, "r1", **{"pipeline.shard_size": 2, "pipeline.window": 1})
    row = read(root, "runs", "r1").to_dicts()[0]
    assert row["status"] == "cancelled" and row["error"].startswith("KeyboardInterrupt")
    calls = read(root, "llm_calls", "r1")
    assert row["calls"] == calls.filter(~pl.col("cache_hit")).height >= 2  # the finished shard's calls at least
    assert not partition_dir(root, "events", "r1").exists()  # a cancelled run publishes no half data


def test_at_most_window_shard_tasks_run_at_once(prefect_server: str, fake: FakeOpenAI, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    fake.responder = answer
    fake.latency_s = 0.1
    summary = run(fake, interviews(tmp_path, 12), tmp_path / "data", "r1", **{"pipeline.shard_size": 2, "pipeline.window": 2})
    assert summary["task_runs"] == 6 * 3
    task_states(summary["flow_run_id"], summary["task_runs"])
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[summary["flow_run_id"]])))
    spans = [(r.start_time, r.end_time) for r in runs if r.task_key and r.start_time and r.end_time]
    assert len(spans) == 18
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = peak = 0
    for _, change in edges:  # an end sorts before a start at the same instant
        running += change
        peak = max(peak, running)
    assert 1 < peak <= 2  # shards overlapped, never more than the window
