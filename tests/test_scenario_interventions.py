"""Interventions declared in scenario files: checked at load time, fired inside the pipeline's step
tasks, recorded as events, kept across task boundaries and resumes, and part of a step's cache key.

The pipeline tests run the scenario flow for real on the session's Prefect server against the fake
OpenAI server; the rest need no server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from typer.testing import CliRunner

from tests.conftest import flow_overrides, sql
from tests.fake_openai import FakeOpenAI
from tests.scripted import Script, agent_of, done, heard, is_repair, kind_of, requests_of_kind, stimuli, talk, turn_prompts, user_text
from troupe import TinyPerson, TinyWorld
from troupe.environment import Intervention
from troupe.errors import SpecError
from troupe.llm import LLMGateway
from troupe.scenario import load_scenario
from troupe.simulation import step_plan

PRICE_CUT = "Croissants now cost 3 euros."
QUEUE = "A queue forms outside."


def bakery(steps: int = 5, queue: str = QUEUE) -> dict[str, Any]:
    """Ana and Ben at a bakery; Ben complains every step. Three interventions: a fixed step, a
    mention of what Ben says (once), and an LLM-judged condition from step 3 on (repeating)."""
    return {
        "name": "bakery",
        "config": {"simulation.max_turns_until_done": 1},
        "personas": [{"persona": {"name": "Ana"}}, {"persona": {"name": "Ben"}}],
        "worlds": [
            {
                "name": "Bakery",
                "steps": steps,
                "stimuli": [{"step": 1, "content": "Croissants cost 4 euros.", "source": "Baker"}],
                "interventions": [
                    {"name": "price-cut", "when": {"at_step": 2}, "effect": [{"kind": "broadcast", "source": "Baker", "content": PRICE_CUT}]},
                    {"name": "complaint", "when": {"mentions": "TOO EXPENSIVE"}, "effect": [{"kind": "think", "to": ["Ana"], "content": "Ben finds it dear."}]},
                    {
                        "name": "queue",
                        "when": {"from_step": 3, "condition": "Someone reacted to the price cut."},
                        "repeat": True,
                        "effect": [{"kind": "see", "to": ["Ben"], "content": queue}],
                    },
                ],
            }
        ],
    }


def write(tmp_path: Path, data: dict[str, Any], name: str = "bakery.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


class Bakery(Script):
    """Ana greets, Ben finds it too expensive, every turn; the LLM judges the queue's condition
    false, then true. While ``broken``, Ben's third turn (step 3) never matches the schema."""

    def __init__(self) -> None:
        super().__init__(
            {"Ana": lambda n: [talk("Good morning."), done()], "Ben": lambda n: [talk("Four euros is too expensive."), done()]},
            holds=[False, True],
        )
        self.broken = False
        self.ben_turns = 0

    def __call__(self, body: dict[str, Any]) -> dict[str, Any] | None:
        if kind_of(body) == "turn" and agent_of(body) == "Ben":
            if not is_repair(body):
                self.ben_turns += 1
            if self.broken and self.ben_turns >= 3:
                return {"nothing": "useful"}
        return super().__call__(body)


@pytest.fixture(autouse=True)
def _send_prefect_logs() -> Iterator[None]:
    yield
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)


def run(fake: FakeOpenAI, scenario: Path, root: Path, run_id: str, **extra: str) -> dict[str, Any]:
    from flows import scenario_flow

    return scenario_flow(str(scenario), run_id=run_id, datasets_root=str(root), overrides=flow_overrides(fake, **extra))


def fired(root: Path, run_id: str) -> list[tuple[int, str, str]]:
    return [
        (step, source, agent)
        for step, source, agent in sql(
            root, f"SELECT step, source, agent FROM events WHERE run_id = '{run_id}' AND type = 'INTERVENTION' ORDER BY seq"
        )
    ]


EXPECTED = [(2, "price-cut", "Bakery"), (2, "complaint", "Bakery"), (4, "queue", "Bakery"), (5, "queue", "Bakery")]


# ----- in the pipeline -----


def test_interventions_fire_in_step_tasks_and_a_resume_does_not_fire_them_again(
    prefect_server: str, fake: FakeOpenAI, tmp_path: Path
) -> None:
    script = Bakery()
    script.broken = True
    fake.responder = script
    scenario, root = write(tmp_path, bakery()), tmp_path / "data"
    fail = {"pipeline.on_item_error": "fail"}  # a setting that shapes results: the same in both runs
    with pytest.raises(Exception, match="did not match the schema"):
        run(fake, scenario, root, "r1", **fail)

    script.broken = False
    summary = run(fake, scenario, root, "r1", **fail)  # the same run id: a resume
    assert summary["status"] == "completed"
    assert summary["tasks_cached"] == 3  # personas, steps 1 and 2: the interventions of step 2 are not redone

    # Each firing is one event of the world (agent = the world), in the events dataset. `complaint`
    # fired at step 2 and never again, though Ben says "too expensive" at every step and every
    # step is a task of its own (and steps 3-5 ran in another process run than step 2).
    assert fired(root, "r1") == EXPECTED
    assert sql(root, "SELECT content FROM events WHERE run_id = 'r1' AND source = 'queue' AND type = 'INTERVENTION' ORDER BY step") == [
        ("from step 3; condition: Someone reacted to the price cut. (judged: check 2)",),
        ("from step 3; condition: Someone reacted to the price cut. (judged: check 3)",),
    ]
    # The effects: the stimuli the scenario declared, to the agents named, in the step they fired.
    rows = sql(root, "SELECT step, agent, type, source, content FROM events WHERE run_id = 'r1' AND direction = 'stimulus' AND type <> 'INTERVENTION' AND type <> 'CONVERSATION' ORDER BY seq")
    assert rows == [(2, "Ana", "THOUGHT", "Ana", "Ben finds it dear."), (4, "Ben", "VISUAL", "", QUEUE), (5, "Ben", "VISUAL", "", QUEUE)]
    cut = sql(root, f"SELECT step, agent, source FROM events WHERE run_id = 'r1' AND content = '{PRICE_CUT}' ORDER BY agent")
    assert cut == [(2, "Ana", "Baker"), (2, "Ben", "Baker")]

    # The LLM judged the queue's condition at steps 3, 4 and 5 only (from_step is checked first);
    # step 3's check was paid by the failed run and replayed from the call cache by the resume.
    checks = requests_of_kind(fake, "precondition")
    assert len(checks) == 3 and all("Condition: Someone reacted to the price cut." in user_text(c) for c in checks)
    # Effects come before the step's turns: Ana acts on the price cut in step 2, Ben sees the queue in steps 4-5.
    ana = turn_prompts(fake, "Ana")
    assert PRICE_CUT not in ana[0] and PRICE_CUT in ana[1] and "Ben finds it dear." in ana[1]
    assert [QUEUE in p for p in turn_prompts(fake, "Ben")[-3:]] == [False, True, True]
    assert not any("INTERVENTION" in p or "price-cut" in p for p in ana)  # no agent is told an intervention fired


def test_an_intervention_is_part_of_the_cache_key_of_the_steps_it_can_fire_in(
    prefect_server: str, fake: FakeOpenAI, tmp_path: Path
) -> None:
    fake.responder = Bakery()
    root = tmp_path / "data"
    first = run(fake, write(tmp_path, bakery()), root, "a")
    assert (first["task_runs"], first["tasks_cached"]) == (1 + 5, 0)
    calls = fake.calls
    again = run(fake, write(tmp_path, bakery()), root, "b")
    assert (again["task_runs"], again["tasks_cached"], fake.calls) == (6, 6, calls)  # unchanged: all from the cache
    assert fired(root, "b") == fired(root, "a") == EXPECTED

    # A changed effect of `queue` (from_step 3): steps 1-2 come from the cache, steps 3-5 run again.
    changed = run(fake, write(tmp_path, bakery(queue="A long queue forms outside."), "changed.yaml"), root, "c")
    assert (changed["task_runs"], changed["tasks_cached"]) == (6, 3)
    # What differs is paid for: Ben's turns at steps 4 and 5 (he saw the new text) and step 5's
    # check (its recent events hold the new text); step 3 and Ana's turns come from the call cache.
    assert fake.calls - calls == 3
    assert fired(root, "c") == EXPECTED
    assert sql(root, "SELECT DISTINCT content FROM events WHERE run_id = 'c' AND type = 'VISUAL'") == [("A long queue forms outside.",)]


# ----- load-time checks -----

BASE = """
name: t
personas:
  - persona: {name: Ana}
  - persona: {name: Ben}
worlds:
  - name: Square
    agents: [Ana]
    steps: 3
    interventions:
"""

# (id, the intervention entries, the field named, the problem)
INVALID = [
    ("no-condition", "      - {name: x, when: {}, effect: [{content: hi}]}", "worlds[0].interventions[0].when", "give at least one of at_step, from_step, mentions, condition"),
    ("two-windows", "      - {name: x, when: {at_step: 1, from_step: 2}, effect: [{content: hi}]}", "worlds[0].interventions[0].when", "give at_step or from_step, not both"),
    ("past-the-steps", "      - {name: x, when: {at_step: 4}, effect: [{content: hi}]}", "worlds[0].interventions", "interventions[0].when.at_step is 4, past the world's 3 steps; raise steps or lower at_step"),
    ("from-past-the-steps", "      - {name: x, when: {from_step: 9, mentions: hi}, effect: [{content: hi}]}", "worlds[0].interventions", "interventions[0].when.from_step is 9"),
    ("no-effect", "      - {name: x, when: {at_step: 1}, effect: []}", "worlds[0].interventions[0].effect", "at least 1 item"),
    ("effect-missing", "      - {name: x, when: {at_step: 1}}", "worlds[0].interventions[0].effect", "Field required"),
    ("python-in-yaml", "      - {name: x, when: {at_step: 1, python: 'lambda w: True'}, effect: [{content: hi}]}", "worlds[0].interventions[0].when.python", "Extra inputs are not permitted"),
    ("effect-with-a-step", "      - {name: x, when: {at_step: 1}, effect: [{step: 2, content: hi}]}", "worlds[0].interventions[0].effect[0].step", "Extra inputs are not permitted"),
    ("bad-kind", "      - {name: x, when: {at_step: 1}, effect: [{kind: shout, content: hi}]}", "worlds[0].interventions[0].effect[0].kind", "'broadcast', 'listen', 'see', 'think', 'goal' or 'context'"),
    ("same-name", "      - {name: x, when: {at_step: 1}, effect: [{content: a}]}\n      - {name: x, when: {at_step: 2}, effect: [{content: b}]}", "worlds[0].interventions", "interventions[1].name: two interventions are named 'x'"),
    ("unknown-target", "      - {name: x, when: {at_step: 1}, effect: [{content: a}, {content: b, to: [Ana, Ben]}]}", "worlds[0].interventions[0].effect[1].to", "'Ben' is not in this world; use one of: Ana"),
]


@pytest.mark.parametrize(("entries", "field", "problem"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID])
def test_a_bad_intervention_is_one_line_naming_the_field(tmp_path: Path, entries: str, field: str, problem: str) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text((BASE + entries + "\n").lstrip(), encoding="utf-8")
    with pytest.raises(SpecError) as error:
        load_scenario(path)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {field}: ") and problem in message, message


def test_troupe_validate_exits_2_on_a_bad_intervention(tmp_path: Path) -> None:
    from flows.cli import app

    path = tmp_path / "scenario.yaml"
    path.write_text((BASE + "      - {name: x, when: {at_step: 1}, effect: [{content: b, to: [Ben]}]}\n").lstrip(), encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "worlds[0].interventions[0].effect[0].to: 'Ben' is not in this world" in result.output


def test_a_step_plan_holds_only_the_interventions_that_can_fire_in_that_step(tmp_path: Path) -> None:
    spec = load_scenario(write(tmp_path, bakery())).scenario.worlds[0]
    names = {step: [i.name for i in step_plan(spec, step).interventions] for step in range(1, 6)}
    assert names == {
        1: ["complaint"], 2: ["price-cut", "complaint"], 3: ["complaint", "queue"], 4: ["complaint", "queue"], 5: ["complaint", "queue"],
    }


# ----- the library's deterministic preconditions -----


def test_step_and_mentions_preconditions_need_no_llm_and_every_firing_is_an_event(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    Script({"Lisa": lambda n: [talk("The price is too HIGH." if n == 1 else "Fine."), done()]}).install(fake)
    lisa, oscar = TinyPerson("Lisa", gateway=gateway), TinyPerson("Oscar", gateway=gateway)
    world = TinyWorld("Shop", [lisa, oscar], gateway=gateway).make_everyone_accessible()
    world.add_intervention(
        Intervention(name="sale").set_mentions_precondition("too high").set_effect(lambda w: w.broadcast("Sale!", "Owner"))
    )
    world.add_intervention(
        Intervention(oscar, name="nudge", repeat=True).set_step_precondition(from_step=4).set_effect(lambda o: o.think("Buy now."))
    )
    world.run(5)

    # Lisa says it in step 2 (heard at the end of step 2): the mention holds at steps 3 (the
    # previous step's events) and 4, but `sale` fires once.
    assert [step for step, _, text in heard(oscar) if text == "Sale!"] == [3]
    assert stimuli(oscar, "THOUGHT") == [(4, "Oscar", "Buy now."), (5, "Oscar", "Buy now.")]
    assert requests_of_kind(fake, "precondition") == []
    logged = [(e.step, e.source, e.agent, e.content) for e in world.state.events if e.type == "INTERVENTION"]
    assert logged == [(3, "sale", "Shop", "mentions 'too high'"), (4, "nudge", "Shop", "from step 4"), (5, "nudge", "Shop", "from step 4")]
    assert world.state.fired_interventions == ["sale", "nudge"]
    # No agent's memory holds the firing, and a restored world keeps it in its log only.
    assert not [e for a in world.agents for e in a.state.episodes if e.type == "INTERVENTION"]
    restored = TinyWorld.from_json(world.to_json(), gateway=gateway)
    assert [e.source for e in restored.state.events if e.type == "INTERVENTION"] == ["sale", "nudge", "nudge"]
    assert not [e for a in restored.agents for e in a.state.episodes if e.type == "INTERVENTION"]


def test_a_mention_in_an_older_step_does_not_count(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    Script({"Lisa": lambda n: [talk("too high" if n == 0 else "ok"), done()]}).install(fake)
    world = TinyWorld("Shop", [TinyPerson("Lisa", gateway=gateway)], gateway=gateway)
    late = Intervention(name="late").set_step_precondition(at_step=3).set_mentions_precondition("too high")
    world.add_intervention(late.set_effect(lambda w: None))
    world.run(3)  # said in step 1; at step 3 only steps 2 and 3 count
    assert world.state.fired_interventions == []


def test_a_step_run_from_json_state_fires_notes_and_remembers(
    fake: FakeOpenAI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What a step task does, without Prefect: state in as JSON, one step, state out as JSON."""
    from tests.conftest import fake_config
    from troupe.environment import WorldState
    from troupe.simulation import new_world, plan_worlds, run_step

    fake.responder = Bakery()
    config = fake_config(fake, tmp_path, **{"simulation.transcript": "true", "simulation.max_turns_until_done": 1})
    loaded = load_scenario(write(tmp_path, bakery(steps=3)))
    spec = loaded.scenario.worlds[0]
    state = new_world(plan_worlds(loaded)[0], spec, loaded.persona_models(), config)
    gateway = LLMGateway(config)
    for _ in range(3):
        state = WorldState.model_validate_json(run_step(state, spec, config, gateway).model_dump_json())
    out = capsys.readouterr().out
    assert "Intervention 'price-cut' fired at step 2." in out and "Intervention 'complaint' fired at step 2." in out
    assert "Intervention 'queue'" not in out  # judged false at step 3
    assert state.fired_interventions == ["price-cut", "complaint"]
    assert [(e.step, e.source) for e in state.events if e.type == "INTERVENTION"] == [(2, "price-cut"), (2, "complaint")]
