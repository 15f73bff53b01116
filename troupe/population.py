"""Population specs, and the people they describe sampled in code (no LLM).

A spec lists dimensions with category shares (``gender: {female: 0.51, male: 0.49}``), numeric
bands written ``"lo-hi"`` (``age: {"18-29": 0.21, ...}``) and dimensions conditional on another
(``occupation: {given: age, shares: {"18-29": {student: 0.6, ...}, ...}}``). Sampling is quota
sampling, seeded: a population of N gets every category's count rounded from ``N x share`` by
largest remainder, so each marginal is met to within one person, and a conditional dimension's
cells are rounded jointly (a controlled rounding, solved as a small integer programme) so its
cells and its marginal are both within one person. A numeric band becomes a number drawn in code
(age 37, not "30-44"). The LLM only writes people around these attributes; it never picks them,
which is what keeps a population's profile honest.
"""

from __future__ import annotations

import json
import math
import random
import re
from pathlib import Path
from typing import Any, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import SpecError, TroupeError

_BAND = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$")
_LOOKS_NUMERIC = re.compile(r"^\s*\d")
_SHARE_TOLERANCE = 0.02


class PopulationError(TroupeError):
    """A population could not be generated as specified (e.g. names still repeat after the bounded rounds)."""


class Conditional(BaseModel):
    """A dimension whose shares depend on the category of another dimension (a joint constraint)."""

    model_config = ConfigDict(extra="forbid")

    given: str = Field(min_length=1)
    shares: dict[str, dict[str, float]] = Field(min_length=1)


Dimension = Union[Conditional, dict[str, float]]


class PopulationSpec(BaseModel):
    """A population: what its people share (context) and the dimensions they are sampled on."""

    model_config = ConfigDict(extra="forbid")

    name: str = "population"
    context: str = ""
    dimensions: dict[str, Dimension] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> "PopulationSpec":
        for dim, spec in self.dimensions.items():
            if isinstance(spec, Conditional):
                parent = self.dimensions.get(spec.given)
                if parent is None or spec.given == dim:
                    raise ValueError(f"dimensions.{dim}.given: {spec.given!r} is not another dimension; name one of {sorted(self.dimensions)}")
                missing = set(self.categories(spec.given)) - set(spec.shares)
                if missing:
                    raise ValueError(
                        f"dimensions.{dim}.shares: no shares for {spec.given} = {sorted(missing)}; add one entry per category of {spec.given}"
                    )
                for parent_category, shares in spec.shares.items():
                    _check_shares(f"dimensions.{dim}.shares.{parent_category}", shares)
            else:
                _check_shares(f"dimensions.{dim}", spec)
        self.order()  # refuses cycles
        return self

    # ----- structure -----

    def categories(self, dim: str) -> list[str]:
        """Every category of dim, in the order first written."""
        spec = self.dimensions[dim]
        if isinstance(spec, Conditional):
            return list(dict.fromkeys(c for shares in spec.shares.values() for c in shares))
        return list(spec)

    def is_numeric(self, dim: str) -> bool:
        return all(_BAND.match(c) for c in self.categories(dim))

    def order(self) -> list[str]:
        """Dimensions with each parent before the dimensions conditional on it."""
        done: list[str] = []
        visiting: set[str] = set()

        def visit(dim: str) -> None:
            if dim in done:
                return
            if dim in visiting:
                raise ValueError(f"dimensions.{dim}.given: the conditions form a cycle; make one dimension unconditional")
            visiting.add(dim)
            spec = self.dimensions[dim]
            if isinstance(spec, Conditional):
                visit(spec.given)
            visiting.discard(dim)
            done.append(dim)

        for dim in self.dimensions:
            visit(dim)
        return done

    def marginal(self, dim: str) -> dict[str, float]:
        """dim's share per category in the whole population (through its parents if conditional)."""
        spec = self.dimensions[dim]
        if not isinstance(spec, Conditional):
            return _normalised(spec)
        result: dict[str, float] = {c: 0.0 for c in self.categories(dim)}
        for parent_category, parent_share in self.marginal(spec.given).items():
            for category, share in _normalised(spec.shares[parent_category]).items():
                result[category] += parent_share * share
        return result

    def targets(self, size: int) -> dict[str, dict[str, float]]:
        """The expected count of every category in a population of size."""
        return {dim: {c: size * s for c, s in self.marginal(dim).items()} for dim in self.dimensions}

    # ----- files -----

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True, width=100)


def _check_shares(where: str, shares: dict[str, float]) -> None:
    if not shares:
        raise ValueError(f"{where}: no categories; give at least one 'category: share'")
    for category, share in shares.items():
        if share < 0 or not math.isfinite(share):
            raise ValueError(f"{where}.{category}: share {share} is negative; shares are fractions that sum to 1")
    total = sum(shares.values())
    if abs(total - 1) > _SHARE_TOLERANCE and abs(total - 100) > 100 * _SHARE_TOLERANCE:
        raise ValueError(f"{where}: shares sum to {total:g}; make them sum to 1 (or 100)")
    numeric = [c for c in shares if _LOOKS_NUMERIC.match(c)]
    if numeric:
        for category in shares:
            match = _BAND.match(category)
            if not match:
                raise ValueError(f"{where}: {category!r} is not a numeric band; write every band as 'lo-hi', e.g. '65-90'")
            if int(match.group(1)) > int(match.group(2)):
                raise ValueError(f"{where}: band {category!r} runs backwards; write it 'lo-hi' with lo <= hi")


def _normalised(shares: dict[str, float]) -> dict[str, float]:
    total = sum(shares.values())
    return {c: s / total for c, s in shares.items()}


def band(category: str) -> tuple[int, int]:
    """The bounds of a numeric band "lo-hi" (inclusive)."""
    match = _BAND.match(category)
    if match is None:
        raise ValueError(f"{category!r} is not a band 'lo-hi'")
    return int(match.group(1)), int(match.group(2))


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def parse_spec(data: Any, source: str = "population spec") -> PopulationSpec:
    """Validate a spec dict; errors become one-line :class:`SpecError`s naming source and field."""
    if not isinstance(data, dict):
        raise SpecError(f"{source}: expected a mapping with 'dimensions', got {type(data).__name__}; see docs/populations.md")
    try:
        return PopulationSpec.model_validate(data)
    except ValidationError as exc:
        error = _relevant_error(exc, data)
        message = str(error.get("msg", "")).removeprefix("Value error, ")
        if message.startswith("dimensions."):
            raise SpecError(f"{source}: {message}") from None
        field = ".".join(str(p) for p in error["loc"] if not str(p).startswith(("function-", "Conditional", "dict[")))
        raise SpecError(f"{source}: {field or '(root)'}: {message}; see docs/populations.md for the format") from None


def _relevant_error(exc: ValidationError, data: dict[str, Any]) -> Any:
    """The error of the union branch the user meant: conditional when the dimension says 'given'."""
    errors = exc.errors()
    for error in errors:
        loc = error["loc"]
        if len(loc) > 2 and loc[0] == "dimensions":
            value = (data.get("dimensions") or {}).get(loc[1])
            meant = "Conditional" if isinstance(value, dict) and "given" in value else "dict["
            if str(loc[2]).startswith(meant):
                return error
    return errors[0]


def load_spec(source: "str | Path | dict[str, Any] | PopulationSpec") -> PopulationSpec:
    """A spec from a YAML or JSON file, a dict, or a spec (returned as is)."""
    if isinstance(source, PopulationSpec):
        return source
    if isinstance(source, dict):
        return parse_spec(source)
    path = Path(source)
    if not path.is_file():
        raise SpecError(f"{path}: no such population spec file; check the path")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SpecError(f"{path}: not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'} ({first}); fix the syntax") from None
    return parse_spec(data, str(path))


# --------------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------------


class SampledPerson(BaseModel):
    """One person's attributes, drawn in code: the category per dimension and the value to write."""

    index: int
    categories: dict[str, str] = Field(default_factory=dict)
    values: dict[str, Union[int, str]] = Field(default_factory=dict)


def largest_remainder(shares: dict[str, float], total: int) -> dict[str, int]:
    """Integer counts summing to total, each within one of total x share (Hamilton's method).

    Ties in the remainders go to the category written first, so the result is deterministic.
    """
    exact = {c: total * s for c, s in _normalised(shares).items()}
    counts = {c: math.floor(x) for c, x in exact.items()}
    left = total - sum(counts.values())
    by_remainder = sorted(exact, key=lambda c: -(exact[c] - counts[c]))
    for category in by_remainder[:left]:
        counts[category] += 1
    return counts


def _controlled_rounding(expected: dict[str, dict[str, float]], column_targets: dict[str, float]) -> dict[str, dict[str, int]]:
    """Round a table whose rows sum to integers so that every cell and every column total is
    rounded up or down (never further), keeping the row totals exact.

    Such a rounding always exists for two-way tables (Cox, 1987); finding one is a small integer
    programme over the fractional cells, solved with scipy's HiGHS, preferring to round each cell
    towards its nearer integer.
    """
    import numpy as np
    from scipy.optimize import Bounds, LinearConstraint, milp

    rows = list(expected)
    columns = list(column_targets)
    cells = [(r, c) for r in rows for c in columns]
    values = np.array([expected[r].get(c, 0.0) for r, c in cells])
    lower, upper = np.floor(values + 1e-9), np.ceil(values - 1e-9)
    upper = np.maximum(upper, lower)
    row_matrix = np.array([[1.0 if cell[0] == r else 0.0 for cell in cells] for r in rows])
    column_matrix = np.array([[1.0 if cell[1] == c else 0.0 for cell in cells] for c in columns])
    row_totals = np.array([round(sum(expected[r].values())) for r in rows], dtype=float)

    def solve(targets: dict[str, float]) -> Any:
        goal = np.array([targets[c] for c in columns])
        return milp(
            c=1.0 - 2.0 * (values - lower),  # rounding a cell up costs more the smaller its fraction
            integrality=np.ones(len(cells)),
            bounds=Bounds(lower, upper),
            constraints=[
                LinearConstraint(row_matrix, row_totals, row_totals),
                LinearConstraint(column_matrix, np.floor(goal + 1e-9), np.ceil(goal - 1e-9)),
            ],
        )

    result = solve(column_targets)
    if not result.success:  # the exact marginal is out of reach of these rows: round the table's own totals
        result = solve({c: sum(expected[r].get(c, 0.0) for r in rows) for c in columns})
    if not result.success:
        raise RuntimeError(f"controlled rounding failed: {result.message}")
    rounded = np.rint(result.x).astype(int)
    table: dict[str, dict[str, int]] = {r: {} for r in rows}
    for (r, c), count in zip(cells, rounded):
        if count:
            table[r][c] = int(count)
    return table


def sample_population(spec: PopulationSpec, size: int, seed: int = 0) -> list[SampledPerson]:
    """size people's attributes, meeting every marginal to within one person; pure and seeded.

    The same (spec, size, seed) always gives the same people, so shards of a population can be
    generated apart and a rerun is served from the caches.
    """
    if size < 1:
        raise SpecError(f"population size: {size} is too small; ask for at least 1 person")
    categories: list[dict[str, str]] = [{} for _ in range(size)]
    for dim in spec.order():
        definition = spec.dimensions[dim]
        rng = random.Random(f"{seed}/{dim}")
        if isinstance(definition, Conditional):
            groups: dict[str, list[int]] = {}
            for index, person in enumerate(categories):
                groups.setdefault(person[definition.given], []).append(index)
            expected = {
                parent: {c: len(members) * s for c, s in _normalised(definition.shares[parent]).items()}
                for parent, members in groups.items()
            }
            targets = {c: size * s for c, s in spec.marginal(dim).items()}
            table = _controlled_rounding(expected, targets)
            for parent, members in groups.items():
                _assign(categories, members, dim, table[parent], rng)
        else:
            _assign(categories, list(range(size)), dim, largest_remainder(definition, size), rng)
    people = []
    for index, person in enumerate(categories):
        values: dict[str, int | str] = {}
        for dim in spec.dimensions:
            category = person[dim]
            if _BAND.match(category) and spec.is_numeric(dim):
                lo, hi = band(category)
                values[dim] = random.Random(f"{seed}/{dim}/{index}").randint(lo, hi)
            else:
                values[dim] = category
        people.append(SampledPerson(index=index, categories={d: person[d] for d in spec.dimensions}, values=values))
    return people


def _assign(categories: list[dict[str, str]], members: list[int], dim: str, counts: dict[str, int], rng: random.Random) -> None:
    pool = [category for category, count in counts.items() for _ in range(count)]
    if len(pool) != len(members):
        raise RuntimeError(f"{dim}: allocated {len(pool)} of {len(members)} people")
    rng.shuffle(pool)
    for index, category in zip(members, pool):
        categories[index][dim] = category
