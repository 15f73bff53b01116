"""TinyTroupe's README code, with only ``tinytroupe`` changed to ``troupe``, against the fake server.

The snippets use the process's default gateway, as a TinyTroupe user's code does; the fixture points
it at the fake server. Paths to TinyTroupe's example files are the ones troupe ships.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import fake_config
from tests.fake_openai import FakeOpenAI
from tests.scripted import Script, done, heard, talk, think
from troupe import control
from troupe.config import load_config
from troupe.errors import ConfigError, SpecError
from troupe.examples import example_path
from troupe.llm import LLMGateway, set_default_gateway


@pytest.fixture
def default_fake(fake: FakeOpenAI, tmp_path: Path) -> Iterator[FakeOpenAI]:
    set_default_gateway(LLMGateway(fake_config(fake, tmp_path)))
    Script({
        "Lisa Carter": lambda n: [talk(f"Hi Oscar, I'd love to know more about you ({n})."), done()],
        "Lisa": lambda n: [think("I should introduce myself."), talk("I am a data scientist."), done()],
        "Oscar": lambda n: [talk(f"I design houses ({n})."), done()],
    }).install(fake)
    yield fake
    control.reset()
    set_default_gateway(None)


def test_lisa_from_the_example_builder(default_fake: FakeOpenAI) -> None:
    from troupe.examples import create_lisa_the_data_scientist

    lisa = create_lisa_the_data_scientist()  # instantiate a Lisa from the example builder
    lisa.listen_and_act("Tell me about your life.")

    assert default_fake.calls == 1 and lisa.name == "Lisa Carter"
    assert "Data Scientist" in default_fake.requests[0]["messages"][0]["content"]


def test_lisa_defined_in_code_and_actions_as_tinytroupe_returns_them(default_fake: FakeOpenAI) -> None:
    from troupe import TinyPerson

    lisa = TinyPerson("Lisa")
    lisa.define("age", 28)
    lisa.define("nationality", "Canadian")
    lisa.define("occupation", {"title": "Data Scientist", "organization": "Microsoft", "description": "You are a data scientist."})
    lisa.define("behaviors", {"routines": {"morning": ["Every morning, you wake up, do some yoga, and check your emails."]}})
    lisa.define("personality", {"traits": ["You are curious and love to learn new things.", "You are analytical and like to solve problems."]})
    lisa.import_fragment(str(example_path("fragments", "travel_enthusiast")))

    actions = lisa.listen_and_act("Tell me about yourself.", return_actions=True, max_content_length=200)

    # What TinyTroupe code does with the returned actions.
    said = [a["action"]["content"] for a in actions if a["action"]["type"] == "TALK"]
    assert said == ["I am a data scientist."]
    assert set(actions[0]["cognitive_state"]) >= {"goals", "attention", "emotions"}
    assert actions[0].type == "THINK"  # and the recorded event, for troupe code
    prompt = default_fake.requests[0]["messages"][0]["content"]
    assert "Canadian" in prompt and "yoga" in prompt and "travel" in prompt.lower()


def test_readme_routines_as_a_list(default_fake: FakeOpenAI, tmp_path: Path) -> None:
    from troupe import TinyPerson

    lisa = TinyPerson("Lisa")
    lisa.define("behaviors", {"routines": ["Every morning, you wake up, do some yoga, and check your emails."]})
    lisa.define("routine", "On Fridays, you bake bread.", group="routines")  # TinyTroupe's older group API
    assert lisa.get("behaviors.routines") == [
        "Every morning, you wake up, do some yoga, and check your emails.",
        "On Fridays, you bake bread.",
    ]
    lisa.listen_and_act("Tell me about yourself.")
    prompt = default_fake.requests[0]["messages"][0]["content"]
    assert "yoga" in prompt and "bake bread" in prompt
    lisa.save_specification(tmp_path / "Lisa.agent.json")
    assert TinyPerson.load_specification(tmp_path / "Lisa.agent.json").get("behaviors.routines") == lisa.get("behaviors.routines")


def test_the_chat_room(default_fake: FakeOpenAI) -> None:
    from troupe import TinyPerson, TinyWorld
    from troupe.examples import create_lisa_the_data_scientist, create_oscar_the_architect

    lisa = create_lisa_the_data_scientist()
    oscar = TinyPerson.load_specification(str(example_path("agents", "Oscar")))
    assert create_oscar_the_architect().name == oscar.name == "Oscar"

    world = TinyWorld("Chat Room", [lisa, oscar])
    world.make_everyone_accessible()
    lisa.listen("Talk to Oscar to know more about him")
    world.run(4)

    assert heard(oscar)[0] == (1, "Lisa Carter", "Hi Oscar, I'd love to know more about you (0).")
    assert heard(lisa)[1] == (1, "Oscar", "I design houses (0).")  # after the USER's stimulus
    assert world.step == 4 and "<table>" in world._repr_html_() and "Oscar" in world._repr_html_()
    assert "Lisa Carter" in lisa._repr_html_() and "Data Scientist" in lisa._repr_html_()


def test_world_run_returns_actions_and_takes_tinytroupe_keywords(default_fake: FakeOpenAI) -> None:
    from troupe import TinyPerson, TinyWorld

    world = TinyWorld("Chat Room", [TinyPerson("Lisa"), TinyPerson("Oscar")])
    world.make_everyone_accessible()
    actions_over_time = world.run(2, return_actions=True, randomize_agents_order=False, parallelize=False)

    # What TinyTroupe code does with them: per step, per agent, the actions' types and contents.
    said = [
        (name, action["action"]["content"])
        for step in actions_over_time
        for name, actions in step.items()
        for action in actions
        if action["action"]["type"] == "TALK"
    ]
    # (Lisa's scripted reply repeats itself in step 2, which the repetition guard drops.)
    assert said == [("Lisa", "I am a data scientist."), ("Oscar", "I design houses (0)."), ("Oscar", "I design houses (1).")]
    assert [list(step) for step in actions_over_time] == [["Lisa", "Oscar"], ["Lisa", "Oscar"]]
    assert heard(world.get_agent_by_name("Oscar"))[0] == (1, "Lisa", "I am a data scientist.")  # sequential: same step


def test_control_begin_checkpoint_end(default_fake: FakeOpenAI, tmp_path: Path) -> None:
    from troupe.examples import create_lisa_the_data_scientist

    cache = tmp_path / "lisa.cache.json"
    for run in range(2):
        control.begin(str(cache))
        lisa = create_lisa_the_data_scientist()
        lisa.listen_and_act("Tell me about your life.")
        control.checkpoint()
        lisa.listen_and_act("And your hobbies?")
        control.end()
    assert default_fake.calls == 2  # the second execution was replayed from the file
    assert control.cache_hits() == 2 and cache.is_file()


def test_chat_widget_sends_to_the_chosen_agent(default_fake: FakeOpenAI) -> None:
    from troupe.examples import create_lisa_the_data_scientist, create_oscar_the_architect
    from troupe.ui import AgentChatJupyterWidget

    people = [create_lisa_the_data_scientist(), create_oscar_the_architect()]
    chat_interface = AgentChatJupyterWidget(people)
    assert chat_interface.send("What do you do?", to="Oscar") == "I design houses (0)."
    assert "I design houses" in chat_interface._repr_html_()
    with pytest.raises(ValueError, match="no agent named 'Marcos'"):
        chat_interface.send("Hi", to="Marcos")


# ----- a TinyTroupe config.ini -----

TINYTROUPE_INI = """\
[OpenAI]
API_TYPE=azure
AZURE_API_VERSION=2024-12-01-preview
MODEL=gpt-4.1-mini
REASONING_MODEL=o3-mini
EMBEDDING_MODEL=text-embedding-3-small
MAX_TOKENS=4000
TEMPERATURE=1.2
TIMEOUT=480
MAX_ATTEMPTS=5
WAITING_TIME=1
MAX_CONCURRENT_MODEL_CALLS=4
CACHE_API_CALLS=False

[Simulation]
PARALLEL_AGENT_ACTIONS=False
RAI_HARMFUL_CONTENT_PREVENTION=True

[Cognition]
ENABLE_MEMORY_CONSOLIDATION=False
EPISODIC_MEMORY_FIXED_PREFIX_LENGTH=10
EPISODIC_MEMORY_LOOKBACK_LENGTH=20

[ActionGenerator]
MAX_ATTEMPTS=3
ENABLE_QUALITY_CHECKS=True
ENABLE_QUALITY_CHECK_FOR_PERSONA_ADHERENCE=True
ENABLE_QUALITY_CHECK_FOR_FLUENCY=False
ENABLE_QUALITY_CHECK_FOR_SIMILARITY=True
QUALITY_THRESHOLD = 6

[Logging]
LOGLEVEL=ERROR
LOGLEVEL_FILE=DEBUG
"""


def test_a_tinytroupe_config_ini_is_translated_with_a_note_per_ignored_key(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "config.ini").write_text(TINYTROUPE_INI)
    with caplog.at_level(logging.WARNING, logger="troupe.config"):
        config = load_config(cwd=tmp_path, environ={})
    assert (config.llm.api_type, config.llm.model, config.llm.api_version) == ("azure", "gpt-4.1-mini", "2024-12-01-preview")
    assert (config.llm.max_tokens, config.llm.temperature, config.llm.timeout_s, config.llm.max_concurrency) == (4000, 1.2, 480, 4)
    assert config.cache.enabled is False and config.simulation.step_mode == "sequential"
    assert (config.simulation.consolidate_every, config.simulation.episode_prefix, config.simulation.episode_window) == (0, 10, 20)
    assert config.simulation.quality_checks == "persona_adherence,similarity"
    assert (config.simulation.quality_max_attempts, config.simulation.quality_threshold) == (3, 6)
    assert config.logging.level == "ERROR"
    notes = [r.getMessage() for r in caplog.records]
    for key in ("REASONING_MODEL", "WAITING_TIME", "RAI_HARMFUL_CONTENT_PREVENTION", "LOGLEVEL_FILE"):
        assert sum(f"] {key}: ignored; " in note for note in notes) == 1, key
    assert all("\n" not in note for note in notes)


def test_an_ollama_config_becomes_an_openai_compatible_endpoint_and_litellm_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "config.ini").write_text("[OpenAI]\nAPI_TYPE=ollama\nBASE_URL=http://localhost:11434/v1\nMODEL=gemma3:1b\n")
    config = load_config(cwd=tmp_path, environ={})
    assert (config.llm.api_type, config.llm.base_url, config.llm.model) == ("openai", "http://localhost:11434/v1", "gemma3:1b")
    (tmp_path / "config.ini").write_text("[OpenAI]\nAPI_TYPE=litellm\n")
    with pytest.raises(ConfigError, match=r"^\[OpenAI\] API_TYPE = litellm: troupe has no litellm client; set \[llm\] api_type = openai"):
        load_config(cwd=tmp_path, environ={})


def test_force_api_cache_switches_the_default_gateways_cache(default_fake: FakeOpenAI, tmp_path: Path) -> None:
    from troupe.clients import force_api_cache
    from troupe.examples import create_lisa_the_data_scientist
    from troupe.openai_utils import force_api_cache as old_path

    assert old_path is force_api_cache
    lisa = create_lisa_the_data_scientist()  # built before the switch: it follows it too
    force_api_cache(False)
    lisa.listen_and_act("Tell me about your life.")
    create_lisa_the_data_scientist().listen_and_act("Tell me about your life.")
    assert default_fake.calls == 2  # off: the same call is paid twice
    force_api_cache(True, str(tmp_path / "my_cache.pickle"))
    for expected in (3, 3):  # on: paid once into my_cache/, then replayed
        create_lisa_the_data_scientist().listen_and_act("Tell me about your life.")
        assert default_fake.calls == expected
    assert any((tmp_path / "my_cache" / "calls").rglob("*.json"))


def test_word_processor_notebook(default_fake: FakeOpenAI, tmp_path: Path) -> None:
    """TinyTroupe's "Word Processor Tool Usage" notebook, imports as there (TinyToolUse from the agent package)."""
    import json

    import troupe.tools
    from troupe.agent import TinyToolUse
    from troupe.enrichment import TinyEnricher
    from troupe.examples import create_lisa_the_data_scientist
    from troupe.extraction import ArtifactExporter
    from troupe.tools import TinyWordProcessor

    assert TinyToolUse is troupe.tools.TinyToolUse

    resume = {"title": "Resume", "content": "Data scientist. Search relevance."}
    script = Script({"Lisa Carter": [[{"type": "WRITE_DOCUMENT", "content": json.dumps(resume), "target": ""}, done()], [talk("You told me I was fired."), done()]]})
    default_fake.responder = lambda body: "# Lisa Carter\n\nA detailed resume." if not body.get("response_format") else script(body)

    data_export_folder = str(tmp_path / "extractions" / "wordprocessor")
    exporter = ArtifactExporter(base_output_folder=data_export_folder)
    enricher = TinyEnricher()
    tooluse_faculty = TinyToolUse(tools=[TinyWordProcessor(exporter=exporter, enricher=enricher)])
    lisa = create_lisa_the_data_scientist()
    lisa.add_mental_faculties([tooluse_faculty])
    lisa.listen_and_act("You have just been fired and need to find a new job. Write a resume. Make it very detailed.")
    lisa.listen_and_act("What did I just told you?")

    folder = Path(data_export_folder) / "Document"
    assert sorted(p.name for p in folder.iterdir()) == ["Resume.docx", "Resume.json", "Resume.md"]
    assert (folder / "Resume.md").read_text() == "# Lisa Carter\n\nA detailed resume."


def test_tinytroupe_example_loaders_and_second_builders() -> None:
    from troupe import TinyPerson
    from troupe.examples import (
        create_marcos_the_physician_2,
        list_example_agents,
        list_example_fragments,
        load_example_agent_specification,
        load_example_fragment_specification,
    )

    assert {"Lisa", "Oscar", "Marcos", "Lila"} <= set(list_example_agents())
    assert "travel_enthusiast" in list_example_fragments()
    spec = load_example_agent_specification("Lisa")
    assert spec["type"] == "TinyPerson" and spec["persona"]["name"] == "Lisa Carter"
    assert load_example_fragment_specification("travel_enthusiast")["type"] == "Fragment"
    assert isinstance(create_marcos_the_physician_2(transcript=False), TinyPerson)
    with pytest.raises(SpecError, match="no example named 'Nobody'; choose one of"):
        load_example_agent_specification("Nobody")
