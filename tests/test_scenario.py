"""Scenario files: every mistake is one SpecError line (file, field, fix) before any LLM call,
and valid files resolve their personas from builders, TinyTroupe files with fragments, or inline."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from tests.fake_openai import FakeOpenAI
from troupe.errors import SpecError
from troupe.examples import example_path
from troupe.scenario import load_scenario

EXAMPLES = Path(example_path("agents", "Oscar")).parent.parent

PEOPLE = """
personas:
  - persona: {name: Ana, age: 34}
  - persona: {name: Ben, age: 61}
"""
WORLD = """
worlds:
  - name: Square
    steps: 3
"""


def _write(tmp_path: Path, text: str, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text.lstrip(), encoding="utf-8")
    return path


# (id, scenario text, the field named, the problem, the fix)
INVALID = [
    (
        "invalid-yaml",
        "name: t\npersonas: [\n  - persona: {name: Ana}\nworlds: x\n",
        "line 3, column 3", "invalid YAML", "fix the YAML syntax",
    ),
    (
        "unknown-top-level-key",
        "name: t\ncolour: red\n" + PEOPLE + WORLD,
        "colour", "Extra inputs are not permitted", "see docs/scenarios.md",
    ),
    ("missing-worlds", "name: t\n" + PEOPLE, "worlds", "Field required", "see docs/scenarios.md"),
    (
        "zero-steps",
        "name: t\n" + PEOPLE + "worlds:\n  - {name: Square, steps: 0}\n",
        "worlds[0].steps", "greater than or equal to 1", "see docs/scenarios.md",
    ),
    (
        "stimulus-past-last-step",
        "name: t\n" + PEOPLE + "worlds:\n  - name: Square\n    steps: 3\n    stimuli:\n"
        "      - {step: 1, content: hello}\n      - {step: 4, content: too late}\n",
        "worlds[0].stimuli", "stimuli[1] is at step 4, past the world's 3 steps", "raise steps or move the stimulus",
    ),
    (
        "unknown-agent",
        "name: t\n" + PEOPLE + "worlds:\n  - {name: Square, steps: 2, agents: [Ana, Zoe]}\n",
        "worlds[0].agents[1]", "no persona is named 'Zoe'", "use one of: Ana, Ben",
    ),
    (
        "unknown-stimulus-target",
        "name: t\n" + PEOPLE + "worlds:\n  - name: Square\n    steps: 2\n    agents: [Ana]\n"
        "    stimuli: [{step: 1, content: hi, to: [Ben]}]\n",
        "worlds[0].stimuli[0].to", "'Ben' is not in this world", "use one of: Ana",
    ),
    (
        "relations-on-tinyworld",
        "name: t\n" + PEOPLE + "worlds:\n  - {name: Square, steps: 2, relations: [[Ana, Ben]]}\n",
        "worlds[0].relations", "relations need kind: TinySocialNetwork", "see docs/scenarios.md",
    ),
    (
        "duplicate-persona-names",
        "name: t\npersonas:\n  - builder: lisa\n  - persona: {name: Lisa Carter}\n" + WORLD,
        "personas[1]", "two personas are named 'Lisa Carter'", "give one a different name: field",
    ),
    (
        "duplicate-world-names",
        "name: t\n" + PEOPLE + "worlds:\n  - {name: Square, steps: 2}\n  - {name: Square, steps: 1}\n",
        "worlds", "two worlds share a name", "give every world a unique name",
    ),
    (
        "persona-file-missing",
        "name: t\npersonas:\n  - file: agents/Nobody.agent.json\n" + WORLD,
        "personas[0].file", "agents/Nobody.agent.json does not exist", "give a path relative to the scenario file",
    ),
    (
        "fragment-is-a-whole-agent",
        "name: t\npersonas:\n  - persona: {name: Ana}\n    fragments: [agents/Oscar.agent.json]\n" + WORLD,
        "personas[0].fragments[0]", "agents/Oscar.agent.json is a whole agent, not a fragment", "list it under file instead",
    ),
    (
        "two-persona-sources",
        "name: t\npersonas:\n  - {builder: lisa, persona: {name: Ana}}\n" + WORLD,
        "personas[0]", "give exactly one of builder, file or persona", "see docs/scenarios.md",
    ),
    (
        "invalid-inline-persona",
        "name: t\npersonas:\n  - persona: {name: Ana, age: [1, 2]}\n" + WORLD,
        "personas[0].persona", "persona.age", "fix the value",
    ),
    (
        "reduction-not-select",
        "name: t\n" + PEOPLE + WORLD + "reductions:\n  - {name: wipe, sql: DROP VIEW events}\n",
        "reductions[0].sql", "DROP statements are not allowed", "the datasets are read-only, use SELECT",
    ),
    (
        "reduction-two-statements",
        "name: t\n" + PEOPLE + WORLD + "reductions:\n  - {name: two, sql: 'SELECT 1; SELECT 2'}\n",
        "reductions[0].sql", "expected one statement, got 2", "run them one at a time",
    ),
    (
        "bad-config-key",
        "name: t\nconfig:\n  llm.modle: gpt-4o-mini\n" + PEOPLE + WORLD,
        "config", "llm.modle: unknown key; keys of [llm]: api_type, model,", "use section.key names from config.ini",
    ),
    (
        "bad-config-section",
        "name: t\nconfig:\n  lm.model: gpt-4o-mini\n" + PEOPLE + WORLD,
        "config", "unknown section [lm]", "use section.key names from config.ini",
    ),
    (
        "bad-config-value",
        "name: t\nconfig:\n  simulation.seed: seven\n" + PEOPLE + WORLD,
        "config", "simulation.seed: 'seven' is not a valid int", "use section.key names from config.ini",
    ),
    (
        "bad-time-per-step",
        "name: t\n" + PEOPLE + "worlds:\n  - {name: Square, steps: 2, time_per_step: 5 minutes}\n",
        "worlds[0].time_per_step", "expected a duration such as 30s, 15m, 1h or 1d", "see docs/scenarios.md",
    ),
    (
        "bad-extraction-type",
        "name: t\n" + PEOPLE + WORLD + "extraction:\n  objective: x\n  fields: {n: {type: dict}}\n",
        "extraction.fields.n.type", "Input should be", "see docs/scenarios.md",
    ),
    ("not-a-mapping", "- just\n- a list\n", "(top level)", "expected a mapping", "see docs/scenarios.md"),
]


@pytest.mark.parametrize(("text", "field", "problem", "fix"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID])
def test_an_invalid_scenario_is_one_line_naming_file_field_and_fix(
    fake: FakeOpenAI, tmp_path: Path, text: str, field: str, problem: str, fix: str
) -> None:
    (tmp_path / "agents").mkdir()
    shutil.copy(EXAMPLES / "agents" / "Oscar.agent.json", tmp_path / "agents")
    path = _write(tmp_path, text)
    with pytest.raises(SpecError) as raised:
        load_scenario(path)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {field}: "), message
    problem_and_fix = message[len(f"{path}: {field}: "):]
    assert problem in problem_and_fix, message
    assert problem_and_fix.index(problem) < problem_and_fix.index(f"; {fix}"), message
    assert fake.calls == 0


def test_a_missing_scenario_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"nope\.yaml: no such scenario file; check the path$"):
        load_scenario(tmp_path / "nope.yaml")


def _study(tmp_path: Path) -> Path:
    """A scenario in study/ using copies of the packaged agents and fragments by relative paths."""
    for folder in ("agents", "fragments"):
        shutil.copytree(EXAMPLES / folder, tmp_path / folder)
    (tmp_path / "study").mkdir()
    return _write(
        tmp_path / "study",
        """
name: mixed-personas
config:
  simulation.seed: 7
personas:
  - builder: lisa
  - builder: marcos
    name: Marcos Junior
  - file: ../agents/Oscar.agent.json
    fragments:
      - ../fragments/travel_enthusiast.agent.fragment.json
      - ../fragments/aggressive_debater.fragment.json
  - persona:
      name: Ben
      age: 61
      occupation: {title: Retired bus driver}
worlds:
  - name: Office
    agents: [Lisa Carter, Oscar]
    steps: 2
    time_per_step: 1h
  - name: Town
    kind: TinySocialNetwork
    steps: 3
    relations: [[Ben, Oscar], [Marcos Junior, Ben]]
    stimuli:
      - {step: 3, kind: see, content: A poster, to: [Ben]}
extraction:
  objective: Opinions.
  fields: {opinion: {type: str}}
reductions:
  - name: opinions
    sql: WITH o AS (SELECT agent, opinion FROM extractions) SELECT * FROM o
""",
    )


def test_a_valid_scenario_resolves_builders_files_fragments_and_inline_personas(fake: FakeOpenAI, tmp_path: Path) -> None:
    loaded = load_scenario(_study(tmp_path))
    assert fake.calls == 0
    names = [p["name"] for p in loaded.personas]
    assert names == ["Lisa Carter", "Marcos Junior", "Oscar", "Ben"]
    lisa, marcos, oscar, ben = loaded.personas
    assert lisa["occupation"]["title"] == "Data Scientist"
    assert marcos["occupation"]["title"] == "Neurologist"  # a builder, renamed
    assert oscar["occupation"]["title"] == "Architect"
    # Both fragments merged, in order, on top of the agent file: lists extended, not replaced.
    interests = oscar["preferences"]["interests"]
    assert "Traveling" in interests and "Debates" in interests
    assert interests.index("Traveling") < interests.index("Debates")
    original = json.loads((EXAMPLES / "agents" / "Oscar.agent.json").read_text())["persona"]
    assert all(i in interests for i in original.get("preferences", {}).get("interests", []))
    assert "Travel broadens the mind and enriches the soul." in oscar["beliefs"]
    assert "Winning a debate is always a matter of honor and pride." in oscar["beliefs"]
    assert ben == {"name": "Ben", "age": 61, "occupation": {"title": "Retired bus driver"}}

    scenario = loaded.scenario
    office, town = scenario.worlds
    assert [p["name"] for p in loaded.world_agents(office)] == ["Lisa Carter", "Oscar"]
    assert [p["name"] for p in loaded.world_agents(town)] == names  # no agents: = every persona
    assert office.step_delta() == timedelta(hours=1) and town.step_delta() is None
    assert town.relations == [("Ben", "Oscar"), ("Marcos Junior", "Ben")]
    assert scenario.config == {"simulation.seed": 7}
    assert scenario.extraction is not None and scenario.extraction.fields["opinion"].type == "str"
    assert [r.name for r in scenario.reductions] == ["opinions"]


def test_the_digest_follows_the_persona_files(tmp_path: Path) -> None:
    path = _study(tmp_path)
    first = load_scenario(path)
    assert len(first.digest) == 64
    assert load_scenario(path).digest == first.digest  # stable

    agent = tmp_path / "agents" / "Oscar.agent.json"
    spec = json.loads(agent.read_text())
    spec["persona"]["age"] = 31
    agent.write_text(json.dumps(spec))
    changed = load_scenario(path)
    assert changed.personas[2]["age"] == 31
    assert changed.digest != first.digest
    assert changed.scenario == first.scenario  # the YAML did not change, the persona file did

    fragment = tmp_path / "fragments" / "aggressive_debater.fragment.json"
    spec = json.loads(fragment.read_text())
    spec["persona"]["beliefs"].append("Never concede.")
    fragment.write_text(json.dumps(spec))
    assert load_scenario(path).digest not in (first.digest, changed.digest)


def test_the_packaged_demo_and_test_scenarios_are_valid() -> None:
    demo = load_scenario(EXAMPLES / "scenarios" / "demo.yaml")
    assert [p["name"] for p in demo.personas] == ["Ana", "Ben"]
    square = load_scenario(Path(__file__).parent / "data" / "scenarios" / "square.yaml")
    assert [w.steps for w in square.scenario.worlds] == [4]
    assert demo.digest != square.digest


# ----- large inputs: personas files, isolated worlds -----


def _population(tmp_path: Path, people: int, fmt: str = "jsonl") -> Path:
    specs = [
        {"type": "TinyPerson", "persona": {"name": f"Person {i:05d}", "age": 18 + i % 70, "occupation": {"title": "nurse"}}}
        for i in range(people)
    ]
    if fmt == "jsonl":
        (tmp_path / "people.jsonl").write_text("\n".join(json.dumps(s) for s in specs), encoding="utf-8")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"spec_json": [json.dumps(s["persona"]) for s in specs]}), tmp_path / "people.parquet")
    return _write(
        tmp_path,
        f"""
name: big-survey
personas_file: people.{fmt}
worlds:
  - name: Interview
    kind: isolated
    steps: 1
    stimuli:
      - {{step: 1, kind: listen, source: Interviewer, content: "Would you pay 4 euros for a croissant?"}}
""",
    )


def test_a_10000_person_scenario_loads_in_seconds(tmp_path: Path) -> None:
    import time

    import yaml

    from troupe import scenario as scenario_module
    from troupe.simulation import plan_worlds, shard

    assert scenario_module._YAML_LOADER is getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    path = _population(tmp_path, 10_000)
    started = time.perf_counter()
    loaded = load_scenario(path)
    elapsed = time.perf_counter() - started
    assert elapsed < 30, f"loading 10,000 personas took {elapsed:.1f} s"  # a regression guard, ~2 s here
    assert len(loaded.personas) == 10_000
    assert loaded.personas[123] == {"name": "Person 00123", "age": 18 + 123 % 70, "occupation": {"title": "nurse"}}
    plans = plan_worlds(loaded)
    assert len(plans) == 10_000 and plans[7].name == "Interview/Person 00007" and plans[7].agents == ["Person 00007"]
    assert [len(s) for s in shard(plans, 50)] == [50] * 200
    again = time.perf_counter()
    assert load_scenario(path) is loaded and time.perf_counter() - again < 1  # parsed once per process


def test_a_parquet_personas_file_and_its_errors(tmp_path: Path) -> None:
    loaded = load_scenario(_population(tmp_path, 20, "parquet"))
    assert [p["name"] for p in loaded.personas][:2] == ["Person 00000", "Person 00001"]

    path = _population(tmp_path, 3)
    with (tmp_path / "people.jsonl").open("a", encoding="utf-8") as out:
        out.write('\n{"name": "Broken", "age": \n')
    with pytest.raises(SpecError, match=r"scenario\.yaml: personas_file: people\.jsonl line 4: invalid JSON"):
        load_scenario(path)
    (tmp_path / "people.jsonl").write_text(json.dumps({"name": "Person 00000"}) + "\n" + json.dumps({"name": "Person 00000"}))
    with pytest.raises(SpecError, match=r"personas\[1\]: two personas are named 'Person 00000'"):
        load_scenario(path)
    (tmp_path / "people.jsonl").unlink()
    with pytest.raises(SpecError, match=r"personas_file: people\.jsonl does not exist"):
        load_scenario(path)


def test_a_non_utf8_scenario_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(SpecError, match=r"latin1\.yaml: \(file\): not UTF-8 text .*save the file as UTF-8"):
        load_scenario(path)
