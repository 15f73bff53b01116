"""Personas in TinyTroupe's format: the shipped files load, round-trip, merge and fail clearly."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest

from troupe.agent.persona import (
    Occupation,
    Persona,
    deep_merge,
    load_spec_file,
    save_spec,
)
from troupe.errors import SpecError
from troupe.examples import example_path, list_examples

AGENT_FILES = list_examples("agents")
FRAGMENT_FILES = list_examples("fragments")


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture
def lisa() -> Persona:
    return Persona.from_file(example_path("agents", "Lisa"))


def _write(tmp_path: Path, name: str, content: Any) -> Path:
    path = tmp_path / name
    text = content if isinstance(content, str) else json.dumps(content, indent=4)
    path.write_text(text, encoding="utf-8")
    return path


# ---- shipped examples ----------------------------------------------------------------------


def test_examples_are_shipped() -> None:
    assert [p.name for p in AGENT_FILES] == [
        "Lila.agent.json",
        "Lisa.agent.json",
        "Marcos.agent.json",
        "Oscar.agent.json",
    ]
    assert len(FRAGMENT_FILES) == 3
    assert example_path("fragments", "travel_enthusiast").name == "travel_enthusiast.agent.fragment.json"
    assert example_path("fragments", "aggressive_debater").name == "aggressive_debater.fragment.json"
    assert example_path("populations", "usa").is_file()
    assert example_path("agents", "Lisa.agent.json") == example_path("agents", "Lisa")
    assert (example_path("agents", "Lisa").parent.parent / "LICENSE-data").is_file()


def test_unknown_example_names_the_choices() -> None:
    with pytest.raises(SpecError, match="Bob.*Lisa"):
        example_path("agents", "Bob")
    with pytest.raises(SpecError, match="kind"):
        list_examples("robots")  # type: ignore[arg-type]


# ---- loading and round-trip ----------------------------------------------------------------


@pytest.mark.parametrize("path", AGENT_FILES, ids=lambda p: p.name)
def test_agent_round_trips_exactly(path: Path) -> None:
    original = _json(path)
    persona = Persona.from_file(path)
    assert persona.to_spec() == original
    kind, persona_dict = load_spec_file(path)
    assert kind == "TinyPerson"
    assert persona_dict == original["persona"]
    assert persona.name == original["persona"]["name"]
    assert isinstance(persona.occupation, Occupation)


@pytest.mark.parametrize("path", AGENT_FILES, ids=lambda p: p.name)
def test_agent_saves_and_reloads_exactly(path: Path, tmp_path: Path) -> None:
    target = save_spec(Persona.from_file(path), tmp_path / path.name)
    assert _json(target) == _json(path)
    assert Persona.from_file(target).to_spec() == _json(path)


def test_loading_adds_no_defaults(tmp_path: Path) -> None:
    path = _write(tmp_path, "Min.agent.json", {"type": "TinyPerson", "persona": {"name": "Min"}})
    persona = Persona.from_file(path)
    assert persona.to_spec() == {"type": "TinyPerson", "persona": {"name": "Min"}}
    assert persona.skills == [] and persona.age is None  # defaults readable, never written


def test_occupation_as_plain_string(tmp_path: Path) -> None:
    spec = {"type": "TinyPerson", "persona": {"name": "Oscar", "occupation": "Architect"}}
    persona = Persona.from_file(_write(tmp_path, "Oscar.agent.json", spec))
    assert persona.occupation == "Architect"
    assert persona.to_spec() == spec
    assert "Architect" in persona.minibio_facts()


def test_unknown_fields_are_kept(tmp_path: Path) -> None:
    spec = {
        "type": "TinyPerson",
        "persona": {
            "name": "Ann",
            "favorite_color": "green",
            "occupation": {"title": "Baker", "salary": {"amount": 3, "currency": "EUR"}},
            "personality": {"traits": ["You are kind."], "mbti": "INFJ"},
            "behaviors": {"debate": ["You argue."], "general": []},
            "relationships": [{"name": "Bo", "description": "Brother", "since": 1990}],
        },
    }
    persona = Persona.from_file(_write(tmp_path, "Ann.agent.json", spec))
    assert persona.to_spec() == spec
    assert persona.model_extra == {"favorite_color": "green"}
    assert persona.behaviors.model_extra == {"debate": ["You argue."]}


def test_older_agent_format_keeps_top_level_extras(tmp_path: Path) -> None:
    spec = {
        "type": "TinyPerson",
        "name": "Lisa",
        "persona": {"name": "Lisa", "age": 28},
        "mental_faculties": [],
    }
    path = _write(tmp_path, "Lisa.agent.json", spec)
    persona = Persona.from_file(path)
    assert persona.to_spec() == spec
    assert load_spec_file(path) == ("TinyPerson", {"name": "Lisa", "age": 28})
    # Derived personas keep the extras too.
    assert persona.defined("age", 29).to_spec()["mental_faculties"] == []


# ---- fragments -----------------------------------------------------------------------------


def _assert_merged(base: Any, fragment: Any, merged: Any, where: str = "persona") -> None:
    """Lists extended (no duplicates, base order first), objects merged, scalars replaced."""
    if isinstance(base, dict) and isinstance(fragment, dict):
        assert set(merged) == set(base) | set(fragment), where
        for key in merged:
            if key in fragment and key in base:
                _assert_merged(base[key], fragment[key], merged[key], f"{where}.{key}")
            elif key in fragment:
                assert merged[key] == fragment[key], where
            else:
                assert merged[key] == base[key], where
    elif isinstance(base, list) and isinstance(fragment, list):
        assert merged == base + [item for item in fragment if item not in base], where
    else:
        assert merged == fragment, where


@pytest.mark.parametrize("path", FRAGMENT_FILES, ids=lambda p: p.name)
def test_every_fragment_merges_into_lisa(path: Path, lisa: Persona) -> None:
    kind, fragment = load_spec_file(path)
    assert kind == "Fragment"
    assert fragment == _json(path)["persona"]
    merged = lisa.merged(fragment)
    _assert_merged(lisa.to_dict(), fragment, merged.to_dict())
    assert merged.name == "Lisa Carter"
    # Pure: Lisa herself is unchanged.
    assert lisa.to_spec() == _json(example_path("agents", "Lisa"))


@pytest.mark.parametrize("path", FRAGMENT_FILES, ids=lambda p: p.name)
def test_fragment_applied_twice_adds_nothing(path: Path, lisa: Persona) -> None:
    _, fragment = load_spec_file(path)
    once = lisa.merged(fragment)
    twice = once.merged(fragment)
    assert twice.to_dict() == once.to_dict()
    assert len(twice.beliefs) == len(set(twice.beliefs))


def test_aggressive_debater_concrete_values(lisa: Persona) -> None:
    _, fragment = load_spec_file(example_path("fragments", "aggressive_debater"))
    merged = lisa.merged(fragment)
    # Lists extended: Lisa's items first, then the fragment's.
    assert merged.preferences.interests[0] == "Artificial intelligence and machine learning."
    assert merged.preferences.interests[-1] == "Debates"
    assert len(merged.preferences.interests) == len(lisa.preferences.interests) + 1
    assert merged.preferences.likes[-1] == "Winning debates."
    assert merged.beliefs[-1] == "Winning a debate is always a matter of honor and pride."
    # Objects merged: behaviors keeps general and routines and gains debate.
    assert merged.behaviors.general == lisa.behaviors.general
    assert merged.behaviors.routines == lisa.behaviors.routines
    debate = merged.to_dict()["behaviors"]["debate"]
    assert debate[0] == "You are assertive and confident in your arguments."
    assert len(debate) == 5


def test_picky_customer_and_travel_enthusiast_concrete_values(lisa: Persona) -> None:
    _, picky = load_spec_file(example_path("fragments", "picky_customer"))
    _, travel = load_spec_file(example_path("fragments", "travel_enthusiast"))
    merged = lisa.merged(picky).merged(travel)
    behaviors = merged.to_dict()["behaviors"]
    assert set(behaviors) == {"general", "routines", "shopping", "decision_making", "conversations", "travel"}
    assert behaviors["shopping"][3] == "You ask 'What's the catch?' at least three times during any sales pitch."
    assert merged.preferences.dislikes[-1] == "High exchange rates"
    assert "Criticizing anything" in merged.preferences.likes
    assert merged.beliefs[-1] == "Reading travel guides is fun even if you don't visit the places."
    assert merged.beliefs[: len(lisa.beliefs)] == lisa.beliefs


def test_fragment_scalars_replace_and_objects_merge(tmp_path: Path, lisa: Persona) -> None:
    path = _write(
        tmp_path,
        "older.fragment.json",
        {
            "type": "Fragment",
            "persona": {
                "age": 45,
                "residence": "Lisbon, Portugal",
                "occupation": {"title": "Principal Data Scientist"},
                "personality": {"big_five": {"neuroticism": "Medium."}},
            },
        },
    )
    _, fragment = load_spec_file(path)
    merged = lisa.merged(fragment)
    assert merged.age == 45
    assert merged.residence == "Lisbon, Portugal"
    assert isinstance(merged.occupation, Occupation)
    assert merged.occupation.title == "Principal Data Scientist"
    assert merged.occupation.organization == "Microsoft, M365 Search Team"
    assert merged.personality.big_five["neuroticism"] == "Medium."
    assert merged.personality.big_five["openness"] == "High. Very imaginative and curious."
    assert merged.personality.traits == lisa.personality.traits


def test_merged_accepts_whole_fragment_document(lisa: Persona) -> None:
    document = _json(example_path("fragments", "travel_enthusiast"))
    assert lisa.merged(document).to_dict() == lisa.merged(document["persona"]).to_dict()


def test_merged_validates_the_result(lisa: Persona) -> None:
    with pytest.raises(SpecError, match=r"extra\.fragment\.json: persona\.skills: expected a list of text"):
        lisa.merged({"skills": "juggling"}, source="extra.fragment.json")


def test_deep_merge_is_pure_and_follows_the_rules() -> None:
    base = {"a": [1, 2], "b": {"x": 1, "y": [1]}, "c": "old", "d": [1]}
    fragment = {"a": [2, 3], "b": {"y": [1, 2], "z": 0}, "c": "new", "d": "scalar", "e": {"f": 1}}
    before = (copy.deepcopy(base), copy.deepcopy(fragment))
    result = deep_merge(base, fragment)
    assert result == {
        "a": [1, 2, 3],
        "b": {"x": 1, "y": [1, 2], "z": 0},
        "c": "new",
        "d": "scalar",
        "e": {"f": 1},
    }
    assert (base, fragment) == before
    result["e"]["f"] = 99
    assert fragment["e"]["f"] == 1  # no shared nested objects


# ---- programmatic definitions (TinyTroupe's define / define_several) -----------------------


def test_defined_sets_top_level_and_dotted_fields(lisa: Persona) -> None:
    older = lisa.defined("age", 29)
    assert older.age == 29 and lisa.age == 28
    moved = lisa.defined("occupation.title", "Staff Data Scientist")
    assert isinstance(moved.occupation, Occupation)
    assert moved.occupation.title == "Staff Data Scientist"
    assert moved.occupation.organization == "Microsoft, M365 Search Team"
    assert lisa.defined("personality.big_five.openness", "Very high.").personality.big_five["openness"] == "Very high."
    assert lisa.defined("favorite_color", "teal").to_dict()["favorite_color"] == "teal"


def test_defined_dotted_on_string_occupation_keeps_the_title() -> None:
    persona = Persona.from_dict({"name": "Oscar", "occupation": "Architect"})
    persona = persona.defined("occupation.organization", "Awesome Inc.")
    assert persona.to_dict()["occupation"] == {"title": "Architect", "organization": "Awesome Inc."}
    fresh = Persona.from_dict({"name": "New"}).defined("occupation.title", "Nurse")
    assert fresh.to_dict() == {"name": "New", "occupation": {"title": "Nurse"}}


@pytest.mark.parametrize(
    ("group", "record", "where"),
    [
        ("personality_traits", {"trait": "You are curious."}, ("personality", "traits")),
        ("professional_interests", {"interest": "Search ranking."}, ("preferences", "interests")),
        ("personal_interests", {"interest": "Sailing."}, ("preferences", "interests")),
        ("interests", "Chess.", ("preferences", "interests")),
        ("likes", {"like": "Rain."}, ("preferences", "likes")),
        ("dislikes", "Noise.", ("preferences", "dislikes")),
        ("skills", {"skill": "Juggling."}, ("skills",)),
        ("beliefs", "Kindness matters.", ("beliefs",)),
        ("routines", {"routine": "Walks the dog at 7."}, ("behaviors", "routines", "general")),
        ("behaviors", "Hums when focused.", ("behaviors", "general")),
        ("other_facts", {"fact": "Owns a boat."}, ("other_facts",)),
        ("hobbies", "Knitting.", ("hobbies",)),
    ],
)
def test_defined_with_legacy_groups(lisa: Persona, group: str, record: Any, where: tuple[str, ...]) -> None:
    data = lisa.defined(None, record, group=group).to_dict()
    target: Any = data
    for part in where:
        target = target[part]
    expected = record if isinstance(record, str) else next(iter(record.values()))
    assert target[-1] == expected
    before: Any = lisa.to_dict()
    for part in where:
        before = before.get(part, {} if part != where[-1] else [])
    assert target == before + [expected]  # appended, nothing else changed


def test_defined_with_group_and_key_unwraps_like_tinytroupe(lisa: Persona) -> None:
    # TinyTroupe's define(key, value, group) appended {key: value}; the key is only a label.
    assert lisa.defined("skill", "Rust.", group="skills").skills[-1] == "Rust."


def test_defined_several_legacy_script() -> None:
    persona = Persona.from_dict({"name": "Lisa"})
    persona = persona.defined("age", 28).defined("nationality", "Canadian")
    persona = persona.defined_several(
        "personality_traits",
        [{"trait": "You are curious."}, {"trait": "You are analytical."}],
    )
    persona = persona.defined_several("routines", [{"routine": "Wakes at 6:30."}])
    persona = persona.defined_several(
        "relationships",
        [
            {"name": "Alex", "description": "Your colleague."},
            {"Name": "Sara", "Description": "Your manager."},
        ],
    )
    persona = persona.defined_several("professional_interests", [{"interest": "Search."}])
    persona = persona.defined_several("personal_interests", [{"interest": "Piano."}])
    assert persona.to_dict() == {
        "name": "Lisa",
        "age": 28,
        "nationality": "Canadian",
        "personality": {"traits": ["You are curious.", "You are analytical."]},
        "behaviors": {"routines": {"general": ["Wakes at 6:30."]}},
        "relationships": [
            {"name": "Alex", "description": "Your colleague."},
            {"name": "Sara", "description": "Your manager."},
        ],
        "preferences": {"interests": ["Search.", "Piano."]},
    }
    # Defining the same items again adds nothing.
    again = persona.defined_several("personality_traits", [{"trait": "You are curious."}])
    assert again.personality.traits == ["You are curious.", "You are analytical."]
    assert "Lisa is a 28-year-old Canadian person." in persona.minibio_facts()


def test_defined_rejects_wrong_types(lisa: Persona) -> None:
    with pytest.raises(SpecError, match=r"persona 'Lisa Carter': persona\.age: expected an integer or text, got a list"):
        lisa.defined("age", [28])
    with pytest.raises(SpecError, match=r"persona\.relationships\[3\]"):
        lisa.defined(None, 42, group="relationships")
    with pytest.raises(SpecError, match=r"name: cannot set"):
        lisa.defined("name.first", "Lisa")


def test_minibio_facts(lisa: Persona) -> None:
    assert lisa.minibio_facts() == (
        "Lisa Carter is a 28-year-old Canadian Data Scientist at Microsoft, M365 Search Team. "
        "Personality: You are curious and love to learn new things; "
        "You are analytical and like to solve problems."
    )
    vague = Persona.from_dict({"name": "Sam", "age": "late 80s", "occupation": "Engineer"})
    assert vague.minibio_facts() == "Sam, aged late 80s, is an Engineer."


# ---- errors --------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"Nobody\.agent\.json: file not found.*check the path"):
        Persona.from_file(tmp_path / "Nobody.agent.json")


def test_broken_json(tmp_path: Path) -> None:
    path = _write(tmp_path, "Broken.agent.json", '{"type": "TinyPerson",\n "persona": {"name": "B",}\n}')
    with pytest.raises(SpecError) as info:
        load_spec_file(path)
    message = str(info.value)
    assert "Broken.agent.json" in message
    assert "line 2, column" in message and "invalid JSON" in message
    assert "\n" not in message


def test_wrong_type(tmp_path: Path) -> None:
    path = _write(tmp_path, "Fruit.agent.json", {"type": "Banana", "persona": {"name": "B"}})
    with pytest.raises(SpecError) as info:
        load_spec_file(path)
    message = str(info.value)
    assert "Fruit.agent.json" in message and "type" in message and "Banana" in message
    assert "TinyPerson" in message


def test_missing_type(tmp_path: Path) -> None:
    path = _write(tmp_path, "Untyped.agent.json", {"persona": {"name": "B"}})
    with pytest.raises(SpecError, match=r"Untyped\.agent\.json: type: missing"):
        load_spec_file(path)


def test_age_as_list(tmp_path: Path) -> None:
    path = _write(tmp_path, "Lisa.agent.json", {"type": "TinyPerson", "persona": {"name": "Lisa", "age": [28]}})
    with pytest.raises(SpecError) as info:
        Persona.from_file(path)
    message = str(info.value)
    assert "Lisa.agent.json" in message
    assert "persona.age: expected an integer or text, got a list; fix the value" in message


def test_nested_field_errors_name_the_path(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "Deep.agent.json",
        {"type": "TinyPerson", "persona": {"name": "D", "behaviors": {"routines": {"morning": "Coffee."}}}},
    )
    with pytest.raises(SpecError, match=r"Deep\.agent\.json: persona\.behaviors\.routines\.morning: expected a list of text, got text"):
        load_spec_file(path)
    path = _write(tmp_path, "Job.agent.json", {"type": "TinyPerson", "persona": {"name": "J", "occupation": {"title": 7}}})
    with pytest.raises(SpecError, match=r"persona\.occupation\.title: expected text, got an integer"):
        load_spec_file(path)


def test_agent_without_name(tmp_path: Path) -> None:
    path = _write(tmp_path, "Nameless.agent.json", {"type": "TinyPerson", "persona": {"age": 3}})
    with pytest.raises(SpecError, match=r"Nameless\.agent\.json: persona\.name: required field is missing"):
        load_spec_file(path)


def test_fragment_missing_persona(tmp_path: Path) -> None:
    path = _write(tmp_path, "empty.fragment.json", {"type": "Fragment", "preferences": {}})
    with pytest.raises(SpecError) as info:
        load_spec_file(path)
    message = str(info.value)
    assert "empty.fragment.json" in message and "persona" in message and "missing" in message


def test_fragment_field_of_wrong_type(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.fragment.json", {"type": "Fragment", "persona": {"beliefs": "One belief."}})
    with pytest.raises(SpecError, match=r"bad\.fragment\.json: persona\.beliefs: expected a list of text, got text"):
        load_spec_file(path)


def test_from_file_refuses_a_fragment() -> None:
    with pytest.raises(SpecError, match=r"travel_enthusiast\.agent\.fragment\.json: type: expected \"TinyPerson\""):
        Persona.from_file(example_path("fragments", "travel_enthusiast"))


# ---- saving --------------------------------------------------------------------------------


def test_save_spec_is_atomic_and_readable(tmp_path: Path) -> None:
    marcos = Persona.from_file(example_path("agents", "Marcos"))
    target = tmp_path / "out" / "Marcos.agent.json"
    save_spec(marcos, target)
    save_spec(marcos.defined("age", 36), target)  # overwrite in place
    assert os.listdir(target.parent) == ["Marcos.agent.json"]  # no temp file left behind
    text = target.read_text(encoding="utf-8")
    assert "São Paulo" in text  # ensure_ascii=False
    assert '\n    "persona": {\n        "name": "Marcos Almeida"' in text  # indent=4
    data = json.loads(text)
    assert data["type"] == "TinyPerson" and data["persona"]["age"] == 36


def test_save_spec_failure_leaves_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lisa = Persona.from_file(example_path("agents", "Lisa"))
    target = save_spec(lisa, tmp_path / "Lisa.agent.json")
    before = target.read_bytes()

    def failing_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("troupe.agent.persona.os.replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        save_spec(lisa.defined("age", 99), target)
    assert os.listdir(tmp_path) == ["Lisa.agent.json"]  # the temp file was removed
    assert target.read_bytes() == before  # and the old file is intact
