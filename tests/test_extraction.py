"""Extraction against the fake OpenAI server: TinyTroupe's ResultsExtractor, typed fields, trimmed records."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from tests.conftest import fake_config
from tests.fake_openai import FakeOpenAI
from tests.scripted import is_repair, schema_of, user_text
from troupe import TinyPerson, TinyWorld
from troupe.config import Config
from troupe.extraction import ExtractionSpec, FieldSpec, ResultsExtractor, aextract
from troupe.extraction.core import messages_for
from troupe.extraction.history import estimate_tokens
from troupe.llm import LLMGateway, loop

CHOICES = ("bread", "cake", "nothing")


def person(name: str, config: Config) -> TinyPerson:
    return TinyPerson(name, config=config, transcript=False)


def test_extract_results_from_agents_returns_one_record_each(fake: FakeOpenAI, config: Config) -> None:
    lisa, oscar = person("Lisa", config), person("Oscar", config)
    lisa.listen("The new bakery sells rye bread.", source="Oscar")
    oscar.think("I should try the bakery.")
    extractor = ResultsExtractor()
    results = extractor.extract_results_from_agents(
        [lisa, oscar],
        extraction_objective="What each person thinks of the bakery.",
        situation="A new bakery opened on their street.",
        fields=["opinion", "would_visit"],
        fields_hints={"would_visit": "yes or no, and when"},
        verbose=False,
    )
    assert len(results) == 2 and all(isinstance(r, dict) and list(r) == ["opinion", "would_visit"] for r in results)
    assert all(isinstance(value, str) and value for r in results for value in r.values())
    assert fake.calls == 2 and set(extractor.agent_extraction) == {"Lisa", "Oscar"}
    prompts = sorted(user_text(body) for body in fake.requests)
    assert "Extract it for Lisa." in prompts[0] and 'Oscar said: "The new bakery sells rye bread."' in prompts[0]
    assert "Situation: A new bakery opened on their street." in prompts[0]
    assert "- would_visit (str): yes or no, and when" in prompts[0]


class PlantedChoice:
    """The first reply for each agent names a choice that is not an option; repairs get the fake's valid default."""

    def __init__(self) -> None:
        self.planted: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> dict[str, Any] | None:
        if is_repair(body):
            return None
        properties = schema_of(body)["properties"]
        with self._lock:
            self.planted.append(user_text(body))
        return {name: ("pie" if name == "choice" else 99) for name in properties}


def test_a_choice_field_only_ever_holds_one_of_its_options(fake: FakeOpenAI, config: Config) -> None:
    fake.responder = planted = PlantedChoice()
    people = [person(f"P{i:02d}", config) for i in range(20)]
    fields = {
        "choice": {"type": "choice", "options": list(CHOICES), "description": "what they will buy"},
        "score": FieldSpec(type="int", min=1, max=3),
    }
    results = ResultsExtractor().extract_results_from_agents(people, "What will they buy?", fields=fields)
    assert len(planted.planted) == 20 and fake.calls == 40  # each planted reply was repaired
    assert [r["choice"] in CHOICES for r in results] == [True] * 20
    assert all(r["score"] in (1, 2, 3) for r in results)
    sent = fake.requests[0]["response_format"]["json_schema"]["schema"]["properties"]
    assert sent["choice"]["enum"] == list(CHOICES) and sent["score"]["enum"] == [1, 2, 3]
    assert "- choice (choice), one of: bread, cake, nothing: what they will buy" in planted.planted[0]


def test_scenario_extraction_uses_the_typed_fields(fake: FakeOpenAI, config: Config, tmp_path: Path) -> None:
    # The whole schema, bounds included (as llama.cpp gets it): OpenAI's strict form drops a float's bounds.
    gateway = LLMGateway(fake_config(fake, tmp_path, **{"llm.structured_output": "json_object_schema"}))
    world = TinyWorld("Street", [person("Ana", config), person("Ben", config)], config=config, transcript=False)
    spec = ExtractionSpec.model_validate(
        {
            "objective": "What they will buy.",
            "fields": {
                "choice": {"type": "choice", "options": list(CHOICES)},
                "spend": {"type": "float", "min": 0, "max": 20},
                "items": {"type": "list", "options": ["rye", "cake"]},
                "note": {"type": "str"},
            },
        }
    )
    assert {n: f.storage_type for n, f in spec.fields.items()} == {"choice": "str", "spend": "float", "items": "list[str]", "note": "str"}
    records = loop.run_sync(aextract(world, spec, gateway))
    assert [r.agent for r in records] == ["Ana", "Ben"]
    for record in records:
        assert record.values["choice"] in CHOICES and set(record.values["items"]) <= {"rye", "cake"}
        assert isinstance(record.values["spend"], float)


def test_extract_results_from_world_reads_every_agent_once(fake: FakeOpenAI, config: Config) -> None:
    ana, ben = person("Ana", config), person("Ben", config)
    world = TinyWorld("Street", [ana, ben], config=config, transcript=False)
    world.make_everyone_accessible()
    world.broadcast("The bakery opens tomorrow.")
    fake.responder = lambda body: (
        {"actions": [{"type": "TALK", "content": "I will go at eight.", "target": ""}, {"type": "DONE", "content": "", "target": ""}],
         "cognitive_state": {"goals": "", "context": "", "attention": "", "emotions": "Calm."}}
        if "actions" in schema_of(body).get("properties", {}) else None
    )
    world.run(1)
    extractor = ResultsExtractor()
    result = extractor.extract_results_from_world(world, fields=["plans"])
    assert list(result) == ["plans"] and extractor.world_extraction == {"Street": result}
    prompt = user_text(fake.requests[-1])
    assert prompt.count("I will go at eight.") == 2  # Ana's and Ben's own lines, not each listener's copy
    assert "The bakery opens tomorrow." in prompt and " DONE" not in prompt


def test_without_fields_the_model_names_them(fake: FakeOpenAI, config: Config, tmp_path: Path) -> None:
    lisa = person("Lisa", config)
    lisa.think("Bread prices went up.")
    extractor = ResultsExtractor()
    result = extractor.extract_results_from_agent(lisa)
    assert isinstance(result, dict) and result and all(isinstance(v, str) for v in result.values())
    assert "Choose the fields yourself" in user_text(fake.requests[0])
    extractor.save_as_json(tmp_path / "out.json")
    assert json.loads((tmp_path / "out.json").read_text()) == {"agent_extractions": {"Lisa": result}, "world_extraction": {}}


def test_a_long_record_is_trimmed_to_what_the_objective_needs(fake: FakeOpenAI, config: Config) -> None:
    lisa = person("Lisa", config)
    for i in range(300):
        lisa.listen(f"Lovely weather again today, number {i}, the sun is shining over the river.", source="Neighbour")
        if i == 150:
            lisa.think("Four euros for a croissant is too expensive; I will not pay that price.")
    objective, fields = "Would Lisa pay the croissant price?", {"pays": FieldSpec(type="bool", description="pays the price")}
    full = messages_for(objective, "Lisa", lisa.state.episodes, fields, history_tokens=None)[1]["content"]
    trimmed = messages_for(objective, "Lisa", lisa.state.episodes, fields, history_tokens=1000)[1]["content"]
    assert estimate_tokens(full) > 5000 and estimate_tokens(trimmed) <= 1000 + 100  # the budget, plus the header
    assert "Four euros for a croissant is too expensive" in trimmed  # the relevant event, from the middle
    assert "number 0," in trimmed and "number 299," in trimmed  # how it began, how it ends
    assert "events that bear less on the objective are left out" in trimmed and "left out" not in full
    short = person("Ben", config).think("Croissants are fine.")
    assert messages_for(objective, "Ben", short.state.episodes, fields, history_tokens=1000) == messages_for(
        objective, "Ben", short.state.episodes, fields, history_tokens=None
    )
    # Through the real call: the fake counts four characters a token, as the trimming estimate does.
    ResultsExtractor(history_tokens=1000).extract_results_from_agent(lisa, objective, fields={"pays": fields["pays"]})
    ResultsExtractor(history_tokens=None).extract_results_from_agent(lisa, objective, fields={"pays": fields["pays"]})
    assert estimate_tokens(user_text(fake.requests[0])) * 5 < estimate_tokens(user_text(fake.requests[1]))


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ({"type": "choice"}, "needs options: at least two"),
        ({"type": "choice", "options": ["a", "a"]}, "distinct"),
        ({"type": "str", "options": ["a", "b"]}, "options only apply to choice and list"),
        ({"type": "bool", "min": 1}, "min/max only apply to int and float"),
        ({"type": "int", "min": 5, "max": 1}, "min \\(5\\) is above max \\(1\\)"),
        ({"type": "dict"}, "Input should be"),
    ],
)
def test_bad_fields_are_rejected(field: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ExtractionSpec.model_validate({"objective": "x", "fields": {"f": field}})


def test_wide_integer_ranges_keep_their_bounds() -> None:
    spec = ExtractionSpec.model_validate({"objective": "x", "fields": {"n": {"type": "int", "min": 1.5, "max": 500}}})
    schema = spec.schema_model().model_json_schema()["properties"]["n"]
    assert (schema["minimum"], schema["maximum"], "enum" in schema) == (2, 500, False)


def test_extraction_exports_and_lazy_reexports() -> None:
    import troupe.extraction as extraction

    assert {"ResultsExtractor", "ResultsReducer", "Normalizer", "ArtifactExporter", "ResultsReporter"} <= set(extraction.__all__)
    assert extraction.ArtifactExporter.__module__ == "troupe.artifacts"  # TinyTroupe users import them from here
    assert extraction.ResultsReporter.__module__ == "troupe.reporting"
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        extraction.Nope  # noqa: B018
