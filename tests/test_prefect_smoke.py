"""The Prefect server fixture and one flow run against it (the pipeline tests build on both)."""

from __future__ import annotations

from pathlib import Path

from tests.fake_openai import FakeOpenAI


def test_demo_scenario_runs_as_a_flow(prefect_server: str, fake: FakeOpenAI, tmp_path: Path) -> None:
    from flows import scenario_flow
    from troupe.datasets import connect

    overrides = {"llm.api_type": "openai", "llm.base_url": fake.url, "llm.model": "fake-model", "simulation.transcript": "false"}
    summary = scenario_flow("troupe/examples/scenarios/demo.yaml", run_id="smoke", datasets_root=str(tmp_path), overrides=overrides)
    assert summary["status"] == "completed"
    assert summary["rows"]["personas"] == 2 and summary["rows"]["extractions"] == 2
    connection = connect(tmp_path)
    assert connection.execute("select count(*) from events where run_id = 'smoke'").fetchone()[0] == summary["rows"]["events"]
    connection.close()
