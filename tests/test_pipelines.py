"""The pipelines end to end: a scenario file as Prefect flows, against the fake server and a real
Prefect server, down to the Parquet datasets read back with DuckDB and polars.

The scenario (tests/data/scenarios/square.yaml) has two agents and four steps; agents' turns are
scripted ("<name>, turn <n>" then DONE) and extractions answer fixed values, so every row can be
checked. Cache behaviour is proved with the fake server's request counter.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterator

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

import troupe
from tests.conftest import flow_overrides
from tests.fake_openai import FakeOpenAI, error_body
from tests.scripted import Extracting, kind_of, user_text
from troupe.agent.persona import Persona
from troupe.datasets import connect, partition_dir, write_partition
from troupe.datasets import io as datasets_io
from troupe.datasets.schemas import DATASETS, extractions_schema
from troupe.errors import SpecError
from troupe.llm import LLMAuthError
from troupe.scenario import load_scenario

SCENARIO = Path(__file__).parent / "data" / "scenarios" / "square.yaml"
SECRET = "sk-troupe-test-SECRET-7f3a9c1d"
AGENTS = ("Ana", "Ben")
STEPS = 4
START = datetime(2025, 5, 3, 9, 0)
FIELDS = {"opinion": "str", "supports": "bool", "score": "int", "confidence": "float", "topics": "list[str]"}
ACT_CALLS = len(AGENTS) * STEPS  # one turn per agent per step (max_turns_until_done: 1)
FIRST_RUN_CALLS = ACT_CALLS + len(AGENTS)  # plus one extraction per agent

MAYOR = {1: "The town square will get a fountain.", 3: "The fountain will cost two million euros."}


@pytest.fixture(autouse=True)
def _send_prefect_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a flow test, deliver Prefect's queued logs (a failed flow logs errors) while the server is up.

    Left queued, they are sent at interpreter exit, after the session's server has stopped, and
    the log worker retries against the dead server for a minute or more.
    """
    yield
    if "prefect_server" in request.fixturenames:
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=10)


def extracted(name: str) -> dict[str, Any]:
    return {
        "opinion": f"{name} likes the fountain.",
        "supports": name == "Ana",
        "score": 8 if name == "Ana" else 3,
        "confidence": 0.25 if name == "Ana" else 0.75,
        "topics": ["fountain", name.lower()],
    }


class Responder(Extracting):
    """Scripted turns ("<name>, turn <n>", then DONE) and fixed extraction values per agent."""

    def __init__(self) -> None:
        super().__init__(AGENTS, extracted)


def run(fake: FakeOpenAI, root: Path, run_id: str, scenario: Path = SCENARIO, **extra: str) -> dict[str, Any]:
    from flows import scenario_flow

    return scenario_flow(str(scenario), run_id=run_id, datasets_root=str(root), overrides=flow_overrides(fake, **extra))


def variant(tmp_path: Path, name: str, change: Any) -> Path:
    """A copy of the scenario with change(data) applied."""
    data = yaml.safe_load(SCENARIO.read_text(encoding="utf-8"))
    change(data)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def frame(root: Path, dataset: str, run_id: str) -> pl.DataFrame:
    """One run's partition of a dataset, without run_id, in a stable order."""
    df = pl.read_parquet(partition_dir(root, dataset, run_id) / "*.parquet").drop("run_id")  # every file carries it
    order = {"events": ["world", "seq"], "personas": ["name"], "extractions": ["world", "agent"], "llm_calls": ["key"]}
    return df.sort(order[dataset]) if dataset in order else df


def runs_row(root: Path, run_id: str) -> dict[str, Any]:
    rows = frame(root, "runs", run_id).to_dicts()
    assert len(rows) == 1
    return rows[0]


def datasets_of(root: Path, run_id: str) -> set[str]:
    return {p.parent.name for p in root.glob(f"*/run_id={run_id}") if any(p.glob("*.parquet"))}


EVENT_COLUMNS = ["step", "sim_time", "agent", "direction", "type", "source", "target", "content"]


def expected_events() -> list[tuple[Any, ...]]:
    """The EVENT_COLUMNS of every event of the first run, in order."""
    rows: list[tuple[Any, ...]] = []

    def add(step: int, agent: str, direction: str, kind: str, source: str, content: str) -> None:
        rows.append((step, START + timedelta(minutes=30 * (step - 1)), agent, direction, kind, source, "", content))

    for step in range(1, STEPS + 1):
        if step in MAYOR:
            for agent in AGENTS:
                add(step, agent, "stimulus", "CONVERSATION", "Mayor", MAYOR[step])
        if step == 2:
            add(step, "Ben", "stimulus", "THOUGHT", "Ben", "Fountains waste water.")
        for agent in AGENTS:
            add(step, agent, "action", "TALK", agent, f"{agent}, turn {step}")
            add(step, agent, "action", "DONE", agent, "")
        add(step, "Ben", "stimulus", "CONVERSATION", "Ana", f"Ana, turn {step}")  # delivered at the step's end
        add(step, "Ana", "stimulus", "CONVERSATION", "Ben", f"Ben, turn {step}")
    return rows


def polars_schema(schema: pa.Schema) -> pl.Schema:
    return pl.Schema({**pl.from_arrow(schema.empty_table()).schema, "run_id": pl.String})


def action_keys(events: pl.DataFrame, steps: range | None = None) -> set[str]:
    actions = events.filter(pl.col("direction") == "action")
    if steps is not None:
        actions = actions.filter(pl.col("step").is_in(list(steps)))
    return set(actions["call_key"])


# ----- a whole run -----


def test_scenario_runs_end_to_end(prefect_server: str, fake: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    Responder().install(fake)
    summary = run(fake, tmp_path, "r1")

    assert fake.calls == FIRST_RUN_CALLS
    assert fake.headers[0]["authorization"] == f"Bearer {SECRET}"  # the key was used, so it could leak
    assert summary["status"] == "completed"
    assert summary["rows"] == {
        "personas": 2, "events": 29, "extractions": 2, "llm_calls": FIRST_RUN_CALLS, "failures": 0,
        "reduction_support": 2, "runs": 1,
    }
    # One shard: a personas task, one task per step, one extraction task; none from the cache.
    assert (summary["task_runs"], summary["tasks_cached"], summary["failures"]) == (1 + STEPS + 1, 0, 0)
    assert summary["paths"]["events"] == str(partition_dir(tmp_path, "events", "r1"))

    # DuckDB: every dataset has exactly its documented columns, run_id (the partition) last.
    unwritten = ("answers", "population_profile", "comparisons")  # this scenario has no survey, population or experiment
    schemas = {**{k: v for k, v in DATASETS.items() if k not in unwritten}, "extractions": extractions_schema(FIELDS)}
    connection = connect(tmp_path)
    try:
        for name, schema in schemas.items():
            columns = connection.execute(f"DESCRIBE {name}").fetchall()
            assert [c[0] for c in columns] == [*schema.names, "run_id"], name
            expected = [] if name == "failures" else [("r1",)]  # no item failed: the partition has no rows
            assert connection.execute(f"SELECT DISTINCT run_id FROM {name}").fetchall() == expected
        types = {c[0]: c[1] for c in connection.execute("DESCRIBE extractions").fetchall()}
        assert (types["supports"], types["score"], types["confidence"], types["topics"]) == (
            "BOOLEAN", "BIGINT", "DOUBLE", "VARCHAR[]",
        )
        assert connection.execute("SELECT agent, supports, score FROM reduction_support").fetchall() == [
            ("Ana", True, 8), ("Ben", False, 3),
        ]
        joined = connection.execute(
            "SELECT count(*) FROM events e JOIN llm_calls c ON e.call_key = c.key WHERE e.direction = 'action'"
        ).fetchone()
        assert joined == (2 * ACT_CALLS,)  # TALK and DONE of every turn join their call
    finally:
        connection.close()

    # polars, with the documented glob: the same columns, with their types.
    for name, schema in schemas.items():
        scan = pl.scan_parquet(f"{tmp_path}/{name}/**/*.parquet", hive_partitioning=True)
        assert scan.collect_schema() == polars_schema(schema), name
    events = pl.scan_parquet(f"{tmp_path}/events/**/*.parquet", hive_partitioning=True).collect().sort("seq")

    # runs
    run_row = runs_row(tmp_path, "r1")
    calls = frame(tmp_path, "llm_calls", "r1")
    assert run_row["status"] == "completed" and run_row["error"] == ""
    assert run_row["scenario"] == "town-square"
    assert run_row["scenario_hash"] == load_scenario(SCENARIO).digest
    assert run_row["troupe_version"] == troupe.__version__
    assert (run_row["model"], run_row["api_type"]) == ("fake-model", "openai")
    assert (run_row["calls"], run_row["cache_hits"]) == (FIRST_RUN_CALLS, 0)
    assert run_row["prompt_tokens"] == calls["prompt_tokens"].sum() > 0
    assert run_row["completion_tokens"] == calls["completion_tokens"].sum() > 0
    price = (run_row["prompt_tokens"] * 0.15 + run_row["completion_tokens"] * 0.60) / 1e6  # config.ini's prices
    assert run_row["cost_usd"] == pytest.approx(price)
    assert run_row["started"] <= run_row["finished"]

    # personas
    loaded = load_scenario(SCENARIO)
    personas = frame(tmp_path, "personas", "r1")
    assert personas["name"].to_list() == ["Ana", "Ben"]
    assert personas["occupation_title"].to_list() == ["Nurse", "Retired bus driver"]
    assert personas["occupation_organization"].to_list() == ["City Hospital", None]
    assert personas["age"].to_list() == ["34", "61"]
    assert personas["nationality"].to_list() == ["Portuguese", None]
    assert personas["persona_id"].n_unique() == 2 and all(re.fullmatch(r"[0-9a-f]{16}", i) for i in personas["persona_id"])
    for spec_json, persona in zip(personas["spec_json"], loaded.personas):
        assert json.loads(spec_json) == persona
        assert Persona.from_dict(json.loads(spec_json)).to_dict() == persona

    # events: every stimulus and action, in order, with the clock advancing 30 minutes a step
    assert events["seq"].to_list() == list(range(29))
    assert set(events["world"]) == {"Square"}
    assert events.select(EVENT_COLUMNS).rows() == expected_events()
    stimuli = events.filter(pl.col("direction") == "stimulus")
    assert set(stimuli["call_key"]) == {""}
    actions = events.filter(pl.col("direction") == "action")
    assert all(re.fullmatch(r"[0-9a-f]{64}", key) for key in actions["call_key"])
    turns = actions.group_by("step", "agent").agg(pl.col("call_key").n_unique().alias("keys"), pl.len().alias("n"))
    assert turns.height == ACT_CALLS and set(turns["keys"]) == {1} and set(turns["n"]) == {2}

    # extractions: typed columns, one row per agent
    extractions = frame(tmp_path, "extractions", "r1")
    assert extractions.drop("call_key").to_dicts() == [
        {"world": "Square", "agent": name, "arm": None, **extracted(name)} for name in AGENTS  # no experiment: no arm
    ]

    # llm_calls: every call once, joined by key from events and extractions
    # seq orders the calls within the task that made them: one part per step task, one for the extraction
    assert sorted(calls["seq"].to_list()) == sorted([0, 1] * (STEPS + 1))
    assert Counter(calls["purpose"]) == {"act:Ana": 4, "act:Ben": 4, "extract:Ana": 1, "extract:Ben": 1}
    assert set(calls["key"]) == action_keys(events) | set(extractions["call_key"])
    assert calls["key"].n_unique() == FIRST_RUN_CALLS
    assert not calls["cache_hit"].any()
    assert set(calls["attempts"]) == {1} and set(calls["model"]) == {"fake-model"} and set(calls["finish_reason"]) == {"stop"}
    purposes = dict(zip(calls["key"], calls["purpose"]))
    assert {agent: purposes[key] for agent, key in zip(extractions["agent"], extractions["call_key"])} == {
        name: f"extract:{name}" for name in AGENTS
    }

    # No API key anywhere under the dataset root, the call cache and task results included.
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any("_cache" in p.parts and "calls" in p.parts for p in files)
    assert any("_cache" in p.parts and "results" in p.parts for p in files)
    assert [p for p in files if SECRET.encode() in p.read_bytes()] == []
    assert [p for p in files if SECRET[-12:].encode() in p.read_bytes()] == []


# ----- caching -----


def test_unchanged_rerun_makes_no_calls_and_writes_the_same_rows(prefect_server: str, fake: FakeOpenAI, tmp_path: Path) -> None:
    Responder().install(fake)
    run(fake, tmp_path, "first")
    assert fake.calls == FIRST_RUN_CALLS

    second = run(fake, tmp_path, "second")
    assert fake.calls == FIRST_RUN_CALLS  # not one more
    assert (second["calls"], second["cache_hits"]) == (0, FIRST_RUN_CALLS)
    row = runs_row(tmp_path, "second")
    assert (row["calls"], row["cache_hits"], row["prompt_tokens"], row["cost_usd"]) == (0, FIRST_RUN_CALLS, 0, 0.0)
    assert row["status"] == "completed"
    for dataset in ("personas", "events", "extractions"):
        assert frame(tmp_path, dataset, "second").equals(frame(tmp_path, dataset, "first")), dataset
    assert frame(tmp_path, "reduction_support", "second").equals(frame(tmp_path, "reduction_support", "first"))
    replayed, paid = frame(tmp_path, "llm_calls", "second"), frame(tmp_path, "llm_calls", "first")
    assert replayed["cache_hit"].all() and set(replayed["attempts"]) == {0} and replayed["cost_usd"].sum() == 0
    assert replayed.select("key", "purpose", "prompt_tokens").equals(paid.select("key", "purpose", "prompt_tokens"))

    # With the cache off, the same scenario calls the server again, every call.
    third = run(fake, tmp_path, "uncached", **{"cache.enabled": "false"})
    assert fake.calls == 2 * FIRST_RUN_CALLS
    assert (third["calls"], third["cache_hits"]) == (FIRST_RUN_CALLS, 0)
    assert not frame(tmp_path, "llm_calls", "uncached")["cache_hit"].any()


def test_changing_only_the_extraction_reruns_only_the_extraction(prefect_server: str, fake: FakeOpenAI, tmp_path: Path) -> None:
    Responder().install(fake)
    run(fake, tmp_path, "before")

    def change(data: dict[str, Any]) -> None:
        data["extraction"]["fields"]["worry"] = {"type": "str", "description": "what worries them"}
        del data["extraction"]["fields"]["confidence"]

    summary = run(fake, tmp_path, "after", variant(tmp_path, "fields", change))
    assert fake.calls == FIRST_RUN_CALLS + len(AGENTS)  # one extraction call per agent, nothing else
    assert (summary["calls"], summary["cache_hits"]) == (len(AGENTS), ACT_CALLS)
    calls = frame(tmp_path, "llm_calls", "after")
    simulation = calls.filter(pl.col("purpose").str.starts_with("act:"))
    extraction = calls.filter(pl.col("purpose").str.starts_with("extract:"))
    assert simulation.height == ACT_CALLS and simulation["cache_hit"].all()
    assert extraction.height == len(AGENTS) and not extraction["cache_hit"].any()
    first = frame(tmp_path, "llm_calls", "before")
    assert set(simulation["key"]) == set(first.filter(pl.col("purpose").str.starts_with("act:"))["key"])
    assert frame(tmp_path, "events", "after").equals(frame(tmp_path, "events", "before"))
    extractions = frame(tmp_path, "extractions", "after")
    assert extractions.columns == ["world", "agent", "call_key", "arm", "opinion", "supports", "score", "topics", "worry"]
    assert extractions["worry"].to_list() == ["worry of Ana", "worry of Ben"]


def test_changing_the_stimulus_of_step_3_reuses_steps_1_and_2(prefect_server: str, fake: FakeOpenAI, tmp_path: Path) -> None:
    Responder().install(fake)
    run(fake, tmp_path, "before")
    new_content = "The fountain will be free: a donor pays for it."

    def change(data: dict[str, Any]) -> None:
        (stimulus,) = [s for s in data["worlds"][0]["stimuli"] if s["step"] == 3]
        stimulus["content"] = new_content

    summary = run(fake, tmp_path, "after", variant(tmp_path, "stimulus", change))
    later_steps = len(AGENTS) * (STEPS - 2)
    assert fake.calls == FIRST_RUN_CALLS + later_steps + len(AGENTS)  # steps 3 and 4, and the extraction
    assert (summary["calls"], summary["cache_hits"]) == (later_steps + len(AGENTS), len(AGENTS) * 2)

    before, after = frame(tmp_path, "events", "before"), frame(tmp_path, "events", "after")
    assert after.filter(pl.col("step") < 3).equals(before.filter(pl.col("step") < 3))
    assert not after.filter(pl.col("step") >= 3).equals(before.filter(pl.col("step") >= 3))
    step3 = after.filter((pl.col("step") == 3) & (pl.col("source") == "Mayor"))
    assert step3["content"].to_list() == [new_content, new_content]

    calls = frame(tmp_path, "llm_calls", "after")
    paid = set(calls.filter(~pl.col("cache_hit"))["key"])
    hits = set(calls.filter(pl.col("cache_hit"))["key"])
    assert hits == action_keys(after, range(1, 3)) == action_keys(before, range(1, 3))
    assert paid == action_keys(after, range(3, STEPS + 1)) | set(frame(tmp_path, "extractions", "after")["call_key"])
    assert not paid & action_keys(before)
    # What the server saw in the second run: only turns that know the new stimulus, and extractions.
    second_run = fake.requests[FIRST_RUN_CALLS:]
    turns = [body for body in second_run if kind_of(body) == "turn"]
    assert len(turns) == later_steps and all(new_content in user_text(body) for body in turns)


# ----- each flow on its own -----


def test_each_flow_runs_on_its_own(prefect_server: str, fake: FakeOpenAI, tmp_path: Path) -> None:
    from flows import extraction_flow, population_flow, reduction_flow, simulation_flow

    Responder().install(fake)
    overrides = {"llm.api_type": "openai", "llm.base_url": fake.url, "llm.model": "fake-model", "simulation.transcript": "false"}
    root = str(tmp_path)

    result = population_flow(str(SCENARIO), run_id="pop", datasets_root=root, overrides=overrides)
    assert result == {"run_id": "pop", "personas": 2}
    assert datasets_of(tmp_path, "pop") == {"personas"}
    assert fake.calls == 0
    assert frame(tmp_path, "personas", "pop")["name"].to_list() == ["Ana", "Ben"]

    result = simulation_flow(str(SCENARIO), run_id="sim", datasets_root=root, overrides=overrides)
    assert result == {"run_id": "sim", "personas": 2, "events": 29, "llm_calls": ACT_CALLS, "failures": 0}
    assert datasets_of(tmp_path, "sim") == {"personas", "events", "llm_calls", "failures"}
    assert fake.calls == ACT_CALLS
    assert frame(tmp_path, "events", "sim").select(EVENT_COLUMNS).rows() == expected_events()

    result = extraction_flow(str(SCENARIO), run_id="ext", datasets_root=root, overrides=overrides)
    assert result == {"run_id": "ext", "extractions": 2}
    assert datasets_of(tmp_path, "ext") == {"extractions"}
    assert fake.calls == ACT_CALLS + len(AGENTS)  # the simulation came from the task cache
    assert frame(tmp_path, "extractions", "ext").drop("call_key").to_dicts() == [
        {"world": "Square", "agent": name, "arm": None, **extracted(name)} for name in AGENTS  # no experiment: no arm
    ]

    result = reduction_flow(str(SCENARIO), run_id="ext", datasets_root=root, overrides=overrides)
    assert result == {"run_id": "ext", "reduction_support": 2}
    assert datasets_of(tmp_path, "ext") == {"extractions", "reduction_support"}
    assert frame(tmp_path, "reduction_support", "ext").rows() == [("Ana", True, 8), ("Ben", False, 3)]
    assert fake.calls == ACT_CALLS + len(AGENTS)
    assert not (tmp_path / "runs").exists()  # only the scenario flow lists runs


# ----- failures -----


def test_a_failing_run_raises_and_is_listed_as_failed_without_the_key(
    prefect_server: str, fake: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    # Providers echo the key back in 401 errors; troupe must scrub it.
    fake.fail_next(100, status=401, body=error_body(401, f"Incorrect API key provided: {SECRET}."))
    with pytest.raises(LLMAuthError) as raised:
        run(fake, tmp_path, "broken")
    message = str(raised.value)
    assert "HTTP 401" in message and "check the API key" in message and SECRET not in message
    assert 1 <= fake.calls <= len(AGENTS)  # an auth error is not retried, by the gateway or by Prefect

    row = runs_row(tmp_path, "broken")
    assert row["status"] == "failed"
    assert row["error"].startswith("LLMAuthError: ") and "HTTP 401" in row["error"]
    assert "\n" not in row["error"] and SECRET not in row["error"]
    assert row["calls"] == 0 and row["scenario"] == "town-square"
    assert datasets_of(tmp_path, "broken") == {"runs"}  # no half-written run
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert [p for p in files if SECRET.encode() in p.read_bytes()] == []


def test_an_invalid_scenario_stops_the_flow_before_any_call(prefect_server: str, fake: FakeOpenAI, tmp_path: Path) -> None:
    bad = variant(tmp_path, "bad", lambda data: data["worlds"][0].update(steps=2))  # the stimulus at step 3 is past it
    with pytest.raises(SpecError, match=r"bad\.yaml: worlds\[0\]\.stimuli: stimuli\[2\] is at step 3"):
        run(fake, tmp_path / "datasets", "bad", bad)
    assert fake.calls == 0
    assert not (tmp_path / "datasets").exists()


# ----- atomic partition writes (no Prefect) -----


def _table(values: list[int]) -> pa.Table:
    return pa.table({"value": pa.array(values, pa.int64())})


def _visible(root: Path, dataset: str) -> list[int]:
    """What readers see: DuckDB's glob and polars' recursive glob must agree."""
    duck = sorted(p.relative_to(root).as_posix() for p in (root / dataset).glob("run_id=*/*.parquet"))
    recursive = sorted(p.relative_to(root).as_posix() for p in (root / dataset).glob("**/*.parquet"))
    assert recursive == duck
    if not duck:
        return []
    return sorted(pl.scan_parquet(f"{root}/{dataset}/**/*.parquet", hive_partitioning=True).collect()["value"])


def _half_written(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make pyarrow write half of the file, then fail (a full disk, a killed writer)."""
    def write_table(table: pa.Table, where: Any, **kwargs: Any) -> None:
        buffer = io.BytesIO()
        real_write_table(table, buffer, **kwargs)
        Path(where).write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        raise OSError(28, "No space left on device")

    real_write_table = pq.write_table
    monkeypatch.setattr(datasets_io.pq, "write_table", write_table)


def test_a_failed_write_leaves_no_partition(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _half_written(monkeypatch)
    with pytest.raises(OSError, match="No space left"):
        write_partition(tmp_path, "events", "r1", _table([1, 2, 3]))
    assert not partition_dir(tmp_path, "events", "r1").exists()
    assert _visible(tmp_path, "events") == []
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # no staging left behind either


def test_a_failed_replacement_keeps_the_old_partition(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_partition(tmp_path, "events", "r1", _table([1, 2]))
    _half_written(monkeypatch)
    with pytest.raises(OSError):
        write_partition(tmp_path, "events", "r1", _table([7, 8, 9]))
    assert _visible(tmp_path, "events") == [1, 2]
    assert [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.parquet")] == ["events/run_id=r1/part-0.parquet"]


def test_a_replaced_partition_stays_readable_until_the_swap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_partition(tmp_path, "events", "r1", _table([1, 2]))
    write_partition(tmp_path, "events", "r0", _table([0]))
    seen: list[list[int]] = []
    real_write_table = pq.write_table

    def write_table(table: pa.Table, where: Any, **kwargs: Any) -> None:
        real_write_table(table, where, **kwargs)
        seen.append(_visible(tmp_path, "events"))  # the new file is whole, but not in place yet
        connection = connect(tmp_path)
        try:
            seen.append(sorted(v for (v,) in connection.execute("SELECT value FROM events").fetchall()))
        finally:
            connection.close()

    monkeypatch.setattr(datasets_io.pq, "write_table", write_table)
    path = write_partition(tmp_path, "events", "r1", _table([7, 8, 9]))
    assert seen == [[0, 1, 2], [0, 1, 2]]
    assert path == partition_dir(tmp_path, "events", "r1") / "part-0.parquet"
    assert _visible(tmp_path, "events") == [0, 7, 8, 9]
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.parquet")) == [
        "events/run_id=r0/part-0.parquet", "events/run_id=r1/part-0.parquet",
    ]
    shutil.rmtree(tmp_path / "events" / "run_id=r0")
    assert _visible(tmp_path, "events") == [7, 8, 9]
