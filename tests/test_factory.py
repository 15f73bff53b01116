"""TinyPersonFactory and population generation against the fake server, over real HTTP.

The fake server's responder plays the LLM: a "consistent" writer that reads the fixed attributes
from the prompt and writes a distinct person around them, and variants that plant what the
factory must catch (a wrong age, the same name for everyone, near-identical people).
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DIMENSIONS
from tests.fake_openai import FakeOpenAI
from troupe.agent import TinyPerson
from troupe.errors import SpecError
from troupe.examples import example_path
from troupe.factory import GenerationSettings, TinyPersonFactory, agenerate_shard, adiversify
from troupe.factory.check import conflicts
from troupe.llm import LLMGateway, loop
from troupe.population import band, load_spec, parse_spec, sample_population
from troupe.profiling import profile

SPEC = {
    "name": "townsfolk",
    "context": "people living in a coastal region",
    "dimensions": DIMENSIONS,
}

_FIRST = [f"{a}{b}" for a in ("Al", "Be", "Ca", "Do", "El", "Fa", "Gi", "Ha") for b in ("ma", "ni", "ro", "sa", "ti")]
_LAST = [f"{a}{b}son" for a in ("Mor", "Kel", "Tam", "Ruv", "Pel", "Sor", "Nad", "Lin") for b in ("a", "e", "i", "o", "u", "y", "ar", "el")]
_ATTRIBUTES = re.compile(r"^Attributes: (\{.*\})$", re.MULTILINE)
_NUMBER = re.compile(r"Write person (\d+)")
_TAKEN = re.compile(r"already taken in this population; give the person another full name: (.*)$", re.MULTILINE)


def _prompt(body: dict[str, Any]) -> str:
    return next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")


def _schema_name(body: dict[str, Any]) -> str:
    return ((body.get("response_format") or {}).get("json_schema") or {}).get("name", "")


def person_number(body: dict[str, Any]) -> int:
    return int(_NUMBER.search(_prompt(body)).group(1))


def attributes(body: dict[str, Any]) -> dict[str, Any]:
    match = _ATTRIBUTES.search(_prompt(body))
    return json.loads(match.group(1)) if match else {}


def unique_name(number: int) -> str:
    """A distinct full name for each person number up to 2,560."""
    return f"{_FIRST[number % len(_FIRST)]} {_LAST[(number // len(_FIRST)) % len(_LAST)]}"


def _sentence(rng: random.Random) -> str:
    return "You " + " ".join(f"{rng.choice('bdfgklmnprstvz')}{rng.choice('aeiou')}{rng.choice('lmnrst')}{rng.randint(0, 999)}" for _ in range(6))


def persona_reply(number: int, fixed: dict[str, Any], name: str | None = None, flavour: int | None = None) -> dict[str, Any]:
    """A PersonaDraft reply holding the fixed attributes; its free text is drawn from flavour (default: number)."""
    rng = random.Random(number if flavour is None else flavour)

    def lines(n: int = 3) -> list[str]:
        return [_sentence(rng) for _ in range(n)]

    others = [f"Your {dim} is {value}." for dim, value in fixed.items() if dim not in ("age", "gender", "region")]
    return {
        "name": name or unique_name(number),
        "age": fixed.get("age", 20 + rng.randint(0, 50)),
        "gender": str(fixed.get("gender", rng.choice(["female", "male"]))),
        "nationality": "Coastlander",
        "residence": f"{fixed.get('region', 'Harbor')} district, {_sentence(rng)[4:20]}",
        "education": _sentence(rng),
        "occupation": {"title": _sentence(rng)[4:30], "organization": _sentence(rng)[4:30], "description": _sentence(rng)},
        "long_term_goals": lines(2),
        "style": _sentence(rng),
        "personality": {
            "traits": lines(),
            "big_five": {k: _sentence(rng) for k in ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism")},
        },
        "preferences": {"interests": lines(), "likes": lines(), "dislikes": lines()},
        "skills": lines(),
        "beliefs": lines(),
        "behaviors": {"general": lines(), "routines": {"morning": lines(2), "workday": lines(2), "evening": lines(2)}},
        "health": _sentence(rng),
        "relationships": [{"name": unique_name(number + 1000), "description": _sentence(rng)}],
        "other_facts": [*lines(2), *others],
    }


def consistent(body: dict[str, Any]) -> dict[str, Any] | None:
    """An LLM that writes a distinct person holding exactly the attributes it is given."""
    if _schema_name(body) != "PersonaDraft":
        return None
    return persona_reply(person_number(body), attributes(body))


def run(coro: Any) -> Any:
    return loop.run_sync(coro)


# ----- sampled populations -----------------------------------------------------------------------


def test_200_people_meet_every_marginal_and_their_age_bands(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    fake.responder = consistent
    spec = parse_spec(SPEC)
    factory = TinyPersonFactory(spec=spec, population_size=200, seed=7, gateway=gateway)
    people = factory.generate_people()
    assert len(people) == 200 and all(isinstance(p, TinyPerson) for p in people)
    assert fake.calls == 200  # one call per person: nothing to rewrite
    report = factory.profile()
    assert report.size == 200
    for dimension in report.dimensions:
        for category in dimension.categories:
            assert abs(category.sampled - category.target) <= 1, (dimension.name, category)
            assert category.achieved == category.sampled
    for person, row in zip(people, factory.generated):
        lo, hi = band(row.categories["age"])
        assert lo <= person.persona.age <= hi and person.persona.age == row.sampled["age"]
        assert person.persona.gender == row.sampled["gender"]
        assert row.sampled["region"] in person.persona.residence
    assert len({p.name for p in people}) == 200
    assert report.rewritten_near_duplicates == report.residual_near_duplicates == report.duplicate_names == 0
    with pytest.raises(SpecError, match="only 0 of the population's 200 people are left"):
        factory.generate_person()


def test_a_person_contradicting_its_attributes_is_rewritten(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    """First drafts get the age wrong; the rewrite, told what was wrong, gets it right."""

    def careless(body: dict[str, Any]) -> dict[str, Any] | None:
        reply = consistent(body)
        if reply is not None and "contradicted the fixed attributes" not in _prompt(body):
            reply["age"] = 130 - int(reply["age"]) if int(reply["age"]) != 65 else 20
        return reply

    fake.responder = careless
    spec = parse_spec(SPEC)
    factory = TinyPersonFactory(spec=spec, population_size=12, seed=1, gateway=gateway)
    people = factory.generate_people(12)
    assert fake.calls == 24
    assert all(row.flags == ["conflict"] and row.drafts == 2 and not row.conflicts for row in factory.generated)
    assert [p.persona.age for p in people] == [row.sampled["age"] for row in factory.generated]
    rewrite = next(_prompt(r) for r in fake.requests if "contradicted" in _prompt(r))
    assert "age: the person is" in rewrite


def test_conflicts_left_after_the_bound_are_reported(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    def stubborn(body: dict[str, Any]) -> dict[str, Any] | None:
        reply = consistent(body)
        if reply is not None:
            reply["gender"] = "unspecified"
        return reply

    fake.responder = stubborn
    factory = TinyPersonFactory(spec=parse_spec(SPEC), population_size=5, seed=2, gateway=gateway, max_attempts=2)
    factory.generate_people()
    assert fake.calls == 10  # two drafts each, then the conflict is kept and reported
    report = factory.profile()
    gender = next(d for d in report.dimensions if d.name == "gender")
    assert sum(c.achieved for c in gender.categories) == 0 and sum(c.sampled for c in gender.categories) == 5
    assert report.inconsistent == 5


def test_conflict_check() -> None:
    persona = {"name": "A B", "age": 37, "gender": "Female", "residence": "North Bay", "other_facts": ["You vote Green party."]}
    assert conflicts(persona, {"age": 37, "gender": "female", "region": "North", "politics": "Green party"}) == {}
    found = conflicts(persona, {"age": 38, "gender": "male", "region": "South", "politics": "Labour"})
    assert set(found) == {"age", "gender", "region", "politics"}  # "male" is not found inside "Female"
    # an age group in words is looked for in the text, not compared with the number
    assert conflicts({**persona, "other_facts": ["You are retired."]}, {"age": "retired"}) == {}
    assert set(conflicts(persona, {"age": "retired"})) == {"age"}


def test_rows_travel_as_json(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    """Pipelines pass sampled people and generated rows between tasks as JSON; both round-trip."""
    from troupe.factory import GeneratedPersona
    from troupe.population import SampledPerson

    fake.responder = consistent
    spec = parse_spec(SPEC)
    people = sample_population(spec, 6, seed=4)
    assert [SampledPerson.model_validate_json(p.model_dump_json()) for p in people] == people
    rows = run(agenerate_shard(people, gateway, GenerationSettings.for_spec(spec, 6)))
    assert [GeneratedPersona.model_validate_json(r.model_dump_json()) for r in rows] == rows
    assert parse_spec(json.loads(spec.model_dump_json())) == spec


# ----- diversity -------------------------------------------------------------------------------------


def test_planted_near_duplicates_are_caught_and_rewritten(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    """People 1-5 first come out as the same person under other names; 2-5 must be rewritten."""

    def copycat(body: dict[str, Any]) -> dict[str, Any] | None:
        if _schema_name(body) != "PersonaDraft":
            return None
        number = person_number(body)
        planted = number <= 5 and "too close to people already in the population" not in _prompt(body)
        return persona_reply(number, attributes(body), flavour=1 if planted else None)

    fake.responder = copycat
    factory = TinyPersonFactory(spec=parse_spec(SPEC), population_size=30, seed=3, gateway=gateway)
    factory.generate_people()
    flagged = sorted(row.index for row in factory.generated if "near-duplicate" in row.flags)
    assert flagged == [1, 2, 3, 4]  # person 1 (index 0) is the original
    report = factory.profile()
    assert report.rewritten_near_duplicates == 4 and report.near_duplicate_rate == pytest.approx(4 / 30)
    assert report.residual_near_duplicates == 0
    assert fake.calls == 34
    rewrites = [_prompt(r) for r in fake.requests if "too close" in _prompt(r)]
    assert len(rewrites) == 4 and all(unique_name(1) in text for text in rewrites)  # the original's bio is shown


def test_generate_people_gives_20_distinct_names_from_the_default_fake(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    import troupe

    assert troupe.TinyPersonFactory is TinyPersonFactory  # TinyTroupe's name, from the top-level package
    factory = TinyPersonFactory("Employees of a bakery chain", gateway=gateway)
    people = factory.generate_people(20)
    assert len(people) == 20 and len({p.name.casefold() for p in people}) == 20


def test_everyone_named_eleanor_is_renamed(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    """TinyTroupe issue #53: a model that names everyone the same. Repeats are rewritten with the taken names shown."""

    def eleanor(body: dict[str, Any]) -> dict[str, Any] | None:
        if _schema_name(body) != "PersonaDraft":
            return None
        number = person_number(body)
        taken = _TAKEN.search(_prompt(body))
        name = unique_name(number) if taken else "Eleanor Whitfield"
        return persona_reply(number, attributes(body), name=name)

    fake.responder = eleanor
    factory = TinyPersonFactory("Retired teachers", gateway=gateway)
    people = factory.generate_people(20)
    assert len({p.name for p in people}) == 20 and people[0].name == "Eleanor Whitfield"
    assert fake.calls == 39  # 20 drafts, then 19 renamed
    assert all("duplicate-name" in row.flags for row in factory.generated[1:])
    # names stay unique across calls of one factory
    more = factory.generate_people(3)
    assert not {p.name for p in more} & {p.name for p in people}
    seen: list[str] = []
    person = factory.generate_person("a retired music teacher who plays the organ", temperature=1.2, post_processing_func=lambda p: seen.append(p.name))
    assert person.name not in {p.name for p in [*people, *more]} and seen == [person.name]
    assert "a retired music teacher who plays the organ" in _prompt(fake.requests[-1])
    assert fake.requests[-1]["temperature"] == 1.2


def test_names_still_repeated_after_the_rounds_are_numbered_and_flagged(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    def stuck(body: dict[str, Any]) -> dict[str, Any] | None:
        return persona_reply(person_number(body), {}, name="Eleanor Whitfield") if _schema_name(body) == "PersonaDraft" else None

    fake.responder = stuck
    factory = TinyPersonFactory("x", gateway=gateway, max_rounds=2)
    people = factory.generate_people(3)
    assert [p.name for p in people] == ["Eleanor Whitfield", "Eleanor Whitfield 2", "Eleanor Whitfield 3"]
    assert fake.calls == 3 + 2  # three drafts, one round rewriting the repeats (the second round's prompts are the first's: cached)
    assert ["renamed" in row.flags for row in factory.generated] == [False, True, True]
    from troupe.profiling import profile

    assert "repeated names rewritten 2, numbered 2, left 0" in profile(factory.generated, parse_spec(SPEC)).summary()
    more = factory.generate_people(1)  # numbering also avoids the names a factory already gave
    assert more[0].name == "Eleanor Whitfield 4"


def test_a_draft_whose_name_is_not_a_name_is_repaired(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    """SmolLM2 once wrote a JSON fragment as a name (',1,476 }...'): the draft is sent back, not kept."""
    replies = iter([",1,476 }\nThis is a very good e", "Maria Lopez"])

    def garbled(body: dict[str, Any]) -> dict[str, Any] | None:
        return persona_reply(0, {}, name=next(replies)) if _schema_name(body) == "PersonaDraft" else None

    fake.responder = garbled
    people = TinyPersonFactory("x", gateway=gateway).generate_people(1)
    assert [p.name for p in people] == ["Maria Lopez"] and fake.calls == 2
    assert "is not a person's name" in json.dumps(fake.requests[-1]["messages"])


def test_shards_generated_apart_are_made_diverse_together(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    """What a pipeline does: sample once, write shards apart, then diversify across shards."""
    fake.responder = consistent
    spec = parse_spec(SPEC)
    people = sample_population(spec, 40, seed=11)
    settings = GenerationSettings.for_spec(spec, 40)
    shards = [run(agenerate_shard(people[i : i + 10], gateway, settings)) for i in range(0, 40, 10)]
    assert fake.calls == 40
    rows = run(adiversify([row for shard in shards for row in shard], gateway, settings))
    assert fake.calls == 40 and [r.index for r in rows] == list(range(40))
    assert json.loads(rows[0].sampled_json()) == rows[0].sampled
    report = profile(rows, spec)
    assert all(abs(c.sampled - c.target) <= 1 for d in report.dimensions for c in d.categories)
    # a rerun is served from the call cache
    again = run(agenerate_shard(people[:10], gateway, settings))
    assert fake.calls == 40 and [r.persona for r in again] == [r.persona for r in shards[0]]


# ----- free-form demographies -------------------------------------------------------------------------

USA = example_path("populations", "usa")


def demography_reply(body: dict[str, Any]) -> dict[str, Any] | None:
    if _schema_name(body) != "DemographySpec":
        return consistent(body)
    assert "Racial and Ethnic Composition" in _prompt(body)  # the demography reached the model
    return {
        "name": "USA adults",
        "context": "Adults living in the United States",
        "dimensions": [
            {"name": "Age", "categories": [{"value": "18-24", "share": 13.1}, {"value": "25-54", "share": 39.4}, {"value": "55-64", "share": 12.9}, {"value": "65+", "share": 16.0}]},
            {"name": "Gender", "categories": [{"value": "male", "share": 49.2}, {"value": "female", "share": 50.8}]},
            {"name": "Region", "categories": [{"value": "Northeast", "share": 17.1}, {"value": "Midwest", "share": 20.8}, {"value": "South", "share": 38.3}, {"value": "West", "share": 23.8}]},
        ],
    }


def test_usa_json_yields_a_structured_spec_written_out_and_cached(fake: FakeOpenAI, gateway: LLMGateway, tmp_path: Path) -> None:
    fake.responder = demography_reply
    out = tmp_path / "usa.spec.yaml"
    factory = TinyPersonFactory.create_factory_from_demography(str(USA), population_size=40, seed=5, gateway=gateway, spec_path=out)
    assert fake.calls == 1
    spec = factory.spec
    assert spec is not None and list(spec.dimensions) == ["age", "gender", "region"]
    assert spec.is_numeric("age") and "65-94" in spec.categories("age")  # "65+" closed as wide as the widest band
    assert abs(sum(spec.marginal("region").values()) - 1) < 1e-9
    assert load_spec(out) == spec and out.read_text().startswith("# Population spec derived by the LLM from")
    people = factory.generate_people(10)
    assert fake.calls == 11 and all(18 <= p.persona.age <= 94 for p in people)
    # the derivation is one cached call: a second factory makes no call for it
    TinyPersonFactory.create_factory_from_demography(USA, population_size=5, gateway=gateway, spec_path=tmp_path / "again.yaml")
    assert fake.calls == 11


def test_usa_json_with_the_default_fake_reply_still_gives_a_valid_spec(fake: FakeOpenAI, gateway: LLMGateway, tmp_path: Path) -> None:
    data = json.loads(USA.read_text())
    from troupe.factory.demography import read_demography

    assert read_demography(USA) == (data, str(USA))  # loaded unchanged
    factory = TinyPersonFactory.create_factory_from_demography(data, population_size=20, gateway=gateway, spec_path=tmp_path / "s.yaml")
    assert factory.spec is not None and factory.spec.dimensions
    assert len(sample_population(factory.spec, 20)) == 20


def test_bad_demography_inputs(tmp_path: Path, gateway: LLMGateway) -> None:
    with pytest.raises(SpecError, match="no such demography file"):
        TinyPersonFactory.create_factory_from_demography(tmp_path / "none.json", 10, gateway=gateway)
    with pytest.raises(SpecError, match="population_size"):
        TinyPersonFactory.create_factory_from_demography(USA, 0, gateway=gateway)
    with pytest.raises(SpecError, match="population_size=N"):
        TinyPersonFactory(spec=SPEC)


def test_profile_table_and_chart(fake: FakeOpenAI, gateway: LLMGateway, tmp_path: Path) -> None:
    fake.responder = consistent
    factory = TinyPersonFactory(spec=parse_spec(SPEC), population_size=20, gateway=gateway)
    factory.generate_people()
    report = factory.profile()
    assert len(report.tables()) == 3 and "20 people" in report.summary()
    chart = report.chart(tmp_path / "profile.png")
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 5_000


def test_dimensions_without_a_persona_field_are_written_anywhere(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    fake.responder = consistent
    spec = parse_spec({"dimensions": {"income": {"20000-49999": 0.6, "50000-99999": 0.4}, "religion": {"Catholic": 0.5, "none": 0.5}}})
    factory = TinyPersonFactory("savers", spec=spec, population_size=10, gateway=gateway)
    people = factory.generate_people()
    assert fake.calls == 10 and factory.profile().inconsistent == 0
    for person, row in zip(people, factory.generated):
        lo, hi = band(row.categories["income"])
        assert lo <= row.sampled["income"] <= hi
        assert f"Your income is {row.sampled['income']}." in person.persona.other_facts
    prompt = _prompt(fake.requests[0])
    assert "- income: " in prompt and "(in " not in prompt.split("Fixed attributes")[1].split("Attributes:")[0]
