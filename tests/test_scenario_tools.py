"""Tools declared in scenario files (``faculties: [TinyWordProcessor, TinyCalendar]``), run through the
pipeline over several steps: documents land in the ``events`` dataset (and a reduction over it),
and a calendar's entries survive the task boundary between steps.

The flow runs for real on the session's Prefect server against the fake OpenAI server.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from tests.conftest import flow_overrides, sql
from tests.fake_openai import FakeOpenAI
from tests.scripted import Script, done, schema_of, turn_prompts, turn_requests
from troupe.errors import SpecError
from troupe.scenario import load_scenario

REPO = Path(__file__).resolve().parent.parent


def _action(type_: str, content: dict[str, Any]) -> dict[str, str]:
    return {"type": type_, "content": json.dumps(content), "target": ""}


PLAN = {"title": "Launch plan", "content": "# Launch plan\n\nShip on Tuesday."}
SCRIPT = {
    "Ana": [
        [_action("ADD_EVENT", {"title": "Team sync", "date": "2025-03-04", "start_time": "10:00"}), _action("WRITE_DOCUMENT", PLAN), done()],
        [_action("ADD_EVENT", {"title": "Yoga", "date": "2025-03-03", "start_time": "07:00"}), _action("LIST_EVENTS", {}), done()],
        [_action("LIST_EVENTS", {"date": "2025-03-04"}), done()],
    ]
}


def office(faculties: list[str]) -> dict[str, Any]:
    return {
        "name": "office",
        "config": {"simulation.max_turns_until_done": 1},
        "personas": [{"persona": {"name": "Ana"}}],
        "worlds": [{"name": "Office", "steps": 3, "faculties": faculties}],
        "reductions": [
            {"name": "documents", "sql": "SELECT agent, step, content->>'title' AS title, content->>'author' AS author FROM events WHERE type = 'DOCUMENT'"}
        ],
    }


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "office.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _send_prefect_logs() -> Iterator[None]:
    yield
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)


def test_shipped_tools_work_across_pipeline_steps(prefect_server: str, fake: FakeOpenAI, tmp_path: Path) -> None:
    from flows import scenario_flow

    Script(SCRIPT).install(fake)
    root = tmp_path / "data"
    summary = scenario_flow(
        str(write(tmp_path, office(["TinyWordProcessor", "TinyCalendar"]))), run_id="r1", datasets_root=str(root), overrides=flow_overrides(fake)
    )
    assert summary["status"] == "completed"
    assert summary["task_runs"] == 1 + 3  # personas, then one task per step: two task boundaries crossed

    # Every step's task restored the tools from the agent's state: their actions are in each turn's schema.
    for body in turn_requests(fake, "Ana"):
        assert {"WRITE_DOCUMENT", "ADD_EVENT", "LIST_EVENTS"} <= set(schema_of(body)["$defs"]["Action"]["properties"]["type"]["enum"])

    # The document is an event of the run (the artifact, in the events dataset), and SQL reads it.
    [(step, content)] = sql(root, "SELECT step, content FROM events WHERE run_id = 'r1' AND type = 'DOCUMENT'")
    assert step == 1 and json.loads(content) == {**PLAN, "author": "Ana"}
    assert sql(root, "SELECT agent, step, title, author FROM reduction_documents WHERE run_id = 'r1'") == [("Ana", 1, "Launch plan", "Ana")]

    # The calendar: step 2 lists an entry added in step 1 (another task) with one of its own, in
    # time order; step 3 lists one day. The agent reads each answer in its next turn.
    told = sql(root, "SELECT step, content FROM events WHERE run_id = 'r1' AND type = 'TOOL' ORDER BY seq")
    assert told == [
        (1, "Added 'Team sync' on 2025-03-04 to your calendar."),
        (1, "The document 'Launch plan' was written."),
        (2, "Added 'Yoga' on 2025-03-03 to your calendar."),
        (2, "Your calendar: 2025-03-03 07:00 Yoga; 2025-03-04 10:00 Team sync."),
        (3, "Your calendar: 2025-03-04 10:00 Team sync."),
    ]
    entries = sql(root, "SELECT step, content->>'title' FROM events WHERE run_id = 'r1' AND type = 'CALENDAR_ENTRY' ORDER BY seq")
    assert entries == [(1, "Team sync"), (2, "Yoga")]
    prompts = turn_prompts(fake, "Ana")
    assert len(prompts) == 3 and "Your calendar: 2025-03-03 07:00 Yoga; 2025-03-04 10:00 Team sync." in prompts[2]


def test_shipped_tools_pass_the_load_check_in_a_fresh_process(tmp_path: Path) -> None:
    """A process that never imported troupe.tools (the CLI's ``troupe validate``) accepts them by name."""
    path = write(tmp_path, office(["TinyWordProcessor", "TinyCalendar"]))
    code = (
        "import sys; from troupe.scenario import load_scenario; "
        f"w = load_scenario({str(path)!r}).scenario.worlds[0]; "
        "print(w.faculties, 'troupe.tools' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['TinyWordProcessor', 'TinyCalendar'] False"  # checked without importing the tools


def test_an_unknown_faculty_names_the_shipped_ones(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as error:
        load_scenario(write(tmp_path, office(["TinyCalendar", "TinyTypewriter"])))
    message = str(error.value)
    assert message.startswith(f"{tmp_path / 'office.yaml'}: worlds[0].faculties[1]: no faculty is registered as 'TinyTypewriter'")
    assert "TinyCalendar" in message and "TinyWordProcessor" in message and "\n" not in message
