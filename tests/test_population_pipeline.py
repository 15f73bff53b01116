"""A scenario's ``population:`` as a Prefect stage: sampled in code, written in shards, read back with DuckDB.

Against the fake server (its responder writes each person around the attributes in the prompt, as
tests/test_factory.py's ``consistent`` writer does) and a real Prefect server.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from tests.fake_openai import FakeOpenAI
from tests.test_factory import SPEC, USA, consistent, demography_reply
from troupe.datasets import connect
from troupe.errors import SpecError
from troupe.population import band, parse_spec
from troupe.scenario import load_scenario

SIZE = 30


@pytest.fixture(autouse=True)
def _send_prefect_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "prefect_server" in request.fixturenames:
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=10)


def scenario_file(tmp_path: Path, population: dict[str, Any], **extra: Any) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump({"name": "townsfolk", "population": population, **extra}, sort_keys=False), encoding="utf-8")
    return path


def run(fake: FakeOpenAI, scenario: Path, root: Path, run_id: str, **extra: str) -> dict[str, Any]:
    from flows import scenario_flow

    overrides = {"llm.api_type": "openai", "llm.base_url": fake.url, "llm.model": "fake-model", "llm.timeout_s": "10",
                 "simulation.transcript": "false", "pipeline.shard_size": "8", **extra}
    return scenario_flow(str(scenario), run_id=run_id, datasets_root=str(root), overrides=overrides)


def test_a_population_is_generated_in_shards_with_every_marginal_met(prefect_server: str, fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.responder = consistent
    (tmp_path / "townsfolk.yaml").write_text(yaml.safe_dump(SPEC), encoding="utf-8")
    scenario = scenario_file(tmp_path, {"spec": "townsfolk.yaml", "size": SIZE, "seed": 3})
    root = tmp_path / "datasets"
    summary = run(fake, scenario, root, "pop-1")
    assert summary["status"] == "completed" and summary["rows"]["personas"] == SIZE
    assert fake.calls == SIZE  # one draft each: consistent, distinct people
    assert summary["task_runs"] == 4 + 1  # ceil(30 / 8) shards, then the diversity pass

    targets = parse_spec(SPEC).targets(SIZE)
    connection = connect(root)
    try:
        for dimension in ("gender", "region"):
            counts = dict(connection.sql(f"SELECT sampled->>'{dimension}', count(*) FROM personas GROUP BY 1").fetchall())
            assert set(counts) == set(targets[dimension])
            assert all(abs(counts[c] - t) <= 1 for c, t in targets[dimension].items())
        rows = connection.sql("SELECT name, age, CAST(sampled->>'age' AS INT), spec_json FROM personas").fetchall()
        profile = connection.sql("SELECT dimension, category, target, sampled, achieved FROM population_profile ORDER BY 1, 2").fetchall()
    finally:
        connection.close()
    assert len({name for name, *_ in rows}) == SIZE
    ages = [int(age) for _, age, _, _ in rows]
    assert ages == [drawn for _, _, drawn, _ in rows]  # each persona's age is the age drawn for it
    age_counts = {category: sum(lo <= a <= hi for a in ages) for category in targets["age"] for lo, hi in [band(category)]}
    assert all(abs(age_counts[c] - t) <= 1 for c, t in targets["age"].items())
    assert len(profile) == sum(len(t) for t in targets.values())
    assert all(abs(sampled - target) <= 1 and achieved == sampled for _, _, target, sampled, achieved in profile)
    saved = json.loads((root / "populations" / "pop-1" / "profile.json").read_text())
    assert saved["size"] == SIZE and saved["near_duplicate_rate"] == 0.0

    # cached by content: the same population under another run id costs no call, and writes the same people
    again = run(fake, scenario, root, "pop-2")
    assert fake.calls == SIZE and again["tasks_cached"] == again["task_runs"] == 5
    connection = connect(root)
    try:
        same = connection.sql(
            "SELECT count(*) FROM (SELECT name, sampled FROM personas WHERE run_id = 'pop-1' "
            "EXCEPT SELECT name, sampled FROM personas WHERE run_id = 'pop-2')"
        ).fetchall()
    finally:
        connection.close()
    assert same == [(0,)]


def test_a_demography_becomes_a_spec_written_next_to_the_run(prefect_server: str, fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.responder = demography_reply
    scenario = scenario_file(tmp_path, {"spec": str(USA), "size": 12, "context": "Adults shopping for groceries"},
                             personas=[{"persona": {"name": "Moderator Mo", "age": 40}}])
    loaded = load_scenario(scenario)
    assert loaded.population_spec is None and "Racial and Ethnic Composition" in json.dumps(loaded.demography)
    root = tmp_path / "datasets"
    summary = run(fake, scenario, root, "usa-1")
    assert summary["rows"]["personas"] == 13 and fake.calls == 1 + 12
    written = root / "populations" / "usa-1" / "USA_adults.spec.yaml"
    assert written.read_text().startswith(f"# Population spec derived by the LLM from {USA}")
    spec = yaml.safe_load(written.read_text())
    assert list(spec["dimensions"]) == ["age", "gender", "region"] and spec["context"] == "Adults shopping for groceries"
    connection = connect(root)
    try:
        listed = connection.sql("SELECT name FROM personas WHERE sampled IS NULL").fetchall()
        regions = dict(connection.sql("SELECT sampled->>'region', count(*) FROM personas WHERE sampled IS NOT NULL GROUP BY 1").fetchall())
    finally:
        connection.close()
    assert listed == [("Moderator Mo",)] and sum(regions.values()) == 12


@pytest.mark.parametrize(
    ("population", "message"),
    [
        ({"spec": "missing.yaml", "size": 5}, "population.spec: missing.yaml does not exist"),
        ({"spec": {"dimensions": {"gender": {"female": 0.9, "male": 0.5}}}, "size": 5}, "dimensions.gender"),
        ({"spec": {"dimensions": {"gender": {"female": 1.0}}}, "size": 0}, "population.size"),
    ],
)
def test_a_bad_population_stops_at_load(tmp_path: Path, population: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        load_scenario(scenario_file(tmp_path, population))
