"""Population specs and quota sampling in code: marginals met within one person, bands drawn, bad specs refused."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import DIMENSIONS
from troupe.errors import SpecError
from troupe.population import PopulationSpec, band, largest_remainder, load_spec, parse_spec, sample_population

SPEC = {
    "name": "three dimensions",
    "context": "adults in a mid-sized country",
    "dimensions": DIMENSIONS,
}


@pytest.fixture
def spec() -> PopulationSpec:
    return parse_spec(SPEC)


def deviations(spec: PopulationSpec, people: list, size: int) -> dict[str, float]:
    result = {}
    for dim, targets in spec.targets(size).items():
        counts = Counter(p.categories[dim] for p in people)
        assert set(counts) <= set(targets), dim
        result[dim] = max(abs(counts[c] - t) for c, t in targets.items())
    return result


@pytest.mark.parametrize("size", [1, 2, 7, 33, 200, 1001])
@pytest.mark.parametrize("seed", [0, 1, 42])
def test_every_marginal_within_one_person(spec: PopulationSpec, size: int, seed: int) -> None:
    people = sample_population(spec, size, seed)
    assert len(people) == size and [p.index for p in people] == list(range(size))
    for dim, deviation in deviations(spec, people, size).items():
        assert deviation < 1, (dim, deviation)


def test_conditional_cells_follow_their_parent(spec: PopulationSpec) -> None:
    """Every (age band, region) cell is within one person of its band's count x the conditional share."""
    people = sample_population(spec, 200, 5)
    by_band = Counter(p.categories["age"] for p in people)
    cells = Counter((p.categories["age"], p.categories["region"]) for p in people)
    for age_band, shares in SPEC["dimensions"]["region"]["shares"].items():
        for region, share in shares.items():
            assert abs(cells[(age_band, region)] - by_band[age_band] * share) < 1


def test_bands_become_numbers_in_their_band(spec: PopulationSpec) -> None:
    people = sample_population(spec, 500, 9)
    ages = [p.values["age"] for p in people]
    assert all(isinstance(a, int) for a in ages)
    for person in people:
        lo, hi = band(person.categories["age"])
        assert lo <= person.values["age"] <= hi
    assert len(set(ages)) > 30  # drawn across the bands, not the band's first number
    assert people[0].values["gender"] == people[0].categories["gender"]


def test_seeded_and_reproducible(spec: PopulationSpec) -> None:
    assert sample_population(spec, 50, 3) == sample_population(spec, 50, 3)
    assert sample_population(spec, 50, 3) != sample_population(spec, 50, 4)


def test_largest_remainder_sums_and_bounds() -> None:
    counts = largest_remainder({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}, 10)
    assert sum(counts.values()) == 10 and sorted(counts.values()) == [3, 3, 4]
    assert largest_remainder({"x": 57.1, "y": 42.9}, 7) == {"x": 4, "y": 3}  # percentages work too


def test_yaml_and_json_files_load_the_same(tmp_path: Path, spec: PopulationSpec) -> None:
    (tmp_path / "p.yaml").write_text(spec.to_yaml())
    (tmp_path / "p.json").write_text(json.dumps(SPEC))
    assert load_spec(tmp_path / "p.yaml") == load_spec(tmp_path / "p.json") == spec


@pytest.mark.parametrize(
    ("dimensions", "expected"),
    [
        ({"age": {"18-29": 0.5, "65+": 0.5}}, "dimensions.age: '65+' is not a numeric band; write every band as 'lo-hi'"),
        ({"age": {"40-30": 1.0}}, "dimensions.age: band '40-30' runs backwards"),
        ({"g": {"a": 0.5, "b": 0.2}}, "dimensions.g: shares sum to 0.7; make them sum to 1 (or 100)"),
        ({"g": {"a": -0.5, "b": 1.5}}, "dimensions.g.a: share -0.5 is negative"),
        ({"g": {"a": "lots"}}, "dimensions.g.a: Input should be a valid number"),
        ({"g": {"given": "h", "shares": {"a": {"x": 1}}}}, "dimensions.g.given: 'h' is not another dimension"),
        ({"h": {"a": 0.5, "b": 0.5}, "g": {"given": "h", "shares": {"a": {"x": 1}}}}, "dimensions.g.shares: no shares for h = ['b']"),
        (
            {"g": {"given": "h", "shares": {"x": {"a": 1}}}, "h": {"given": "g", "shares": {"a": {"x": 1}}}},
            "the conditions form a cycle",
        ),
    ],
)
def test_bad_specs_fail_in_one_line_naming_the_field(dimensions: dict, expected: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec({"dimensions": dimensions}, "pop.yaml")
    message = str(info.value)
    assert message.startswith("pop.yaml: ") and expected in message and "\n" not in message


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no such population spec file"):
        load_spec(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("dimensions: [unclosed")
    with pytest.raises(SpecError, match=r"broken.yaml: not valid YAML"):
        load_spec(broken)
    with pytest.raises(SpecError, match="at least 1"):
        sample_population(parse_spec(SPEC), 0)
