"""A real run's datasets for the tests that read runs (reports, exports).

The scenario flow runs for real (Prefect, the gateway, the openai client) against the fake
server: three people hear a host announce a bakery, talk for two steps with scripted lines
("<name>, turn <n>"), and each is extracted with fixed values, so every derived row is known.
A reduction ranks the extracted ideas by support, the shape of the brainstorming example.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import flow_overrides
from tests.fake_openai import FakeOpenAI
from tests.scripted import Extracting

AGENTS = ("Ana", "Ben", "Cleo")
STEPS = 2
HOST_LINE = "A new bakery opens on Monday."

SCENARIO = f"""
name: bakery
description: Three neighbours hear about a new bakery.
config:
  simulation.persona_max_items: 2
  simulation.max_turns_until_done: 1
personas:
  - persona: {{name: Ana, age: 34, gender: female, occupation: {{title: Nurse}}}}
  - persona: {{name: Ben, age: 61, gender: male, occupation: {{title: Retired bus driver}}}}
  - persona: {{name: Cleo, age: 27, gender: female, occupation: {{title: Baker}}}}
worlds:
  - name: Street
    steps: {STEPS}
    stimuli:
      - step: 1
        kind: broadcast
        source: Host
        content: "{HOST_LINE}"
extraction:
  objective: Find out what each neighbour thinks of the bakery.
  fields:
    visit: {{type: bool}}
    favourite: {{type: str, description: "bread, cake or coffee"}}
    idea: {{type: str, description: "one thing the bakery should offer"}}
reductions:
  - name: ideas
    sql: SELECT idea AS title, count(*) AS support FROM extractions GROUP BY idea ORDER BY support DESC, title
"""

EXTRACTED = {
    "Ana": {"visit": True, "favourite": "bread", "idea": "Rye bread"},
    "Ben": {"visit": False, "favourite": "coffee", "idea": "Rye bread"},
    "Cleo": {"visit": True, "favourite": "bread", "idea": "Vegan cakes"},
}


class Responder(Extracting):
    """Scripted turns ("<name>, turn <n>" then DONE) and the fixed extraction values of EXTRACTED."""

    def __init__(self) -> None:
        super().__init__(AGENTS, EXTRACTED.get)


@dataclass
class SampleRun:
    root: Path
    run_id: str
    paid_calls: int  # chat requests the fake server received during the run
    summary: dict[str, Any]


def make_run(fake: FakeOpenAI, root: Path, run_id: str = "bakery-1") -> SampleRun:
    """Run the bakery scenario as the scenario flow and return where its datasets are."""
    from flows import scenario_flow
    from prefect.logging.handlers import APILogWorker

    fake.reset()
    Responder().install(fake)
    scenario = root.parent / "bakery.yaml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    overrides = flow_overrides(fake, **{"cache.dir": str(root.parent / "cache")})
    summary = scenario_flow(str(scenario), run_id=run_id, datasets_root=str(root), overrides=overrides)
    APILogWorker.drain_all(timeout=10)  # deliver Prefect's queued logs while the session's server is up
    return SampleRun(root=root, run_id=run_id, paid_calls=fake.calls, summary=summary)
