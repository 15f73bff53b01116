"""Survey questions (Expected Parrot EDSL's types) and the reply model each one allows.

Each question builds the pydantic model of its answer: an enum of its options, integer bounds for
a Likert scale, a fixed number of distinct picks for a ranking. That model is the JSON schema the
LLM is asked to follow, so a backend with structured output can only produce a valid answer; the
gateway validates every reply against it (including what JSON Schema cannot say, such as "no
option twice"), so an invalid answer never becomes a row.
"""

from __future__ import annotations

import random
from functools import lru_cache
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

from ..extraction.fields import int_range

WHY_MAX = 300
QUESTION_ID = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"


class _Picks(BaseModel):
    """A checkbox answer: one boolean per option, and how many may be true."""

    bounds: ClassVar[tuple[int, int]] = (0, 0)

    @model_validator(mode="after")
    def _count(self) -> "_Picks":
        picked = sum(1 for value in self.__dict__.values() if value)
        low, high = self.bounds
        if not low <= picked <= high:
            raise ValueError(f"pick {low} to {high} options (set those to true), not {picked}")
        return self


class _Ranking(BaseModel):
    """A ranking: one option per place, each option in one place at most."""

    @model_validator(mode="after")
    def _distinct(self) -> "_Ranking":
        values = list(self.__dict__.values())
        if len(set(values)) != len(values):
            raise ValueError("each option may take one place only")
        return self


class _Question(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=QUESTION_ID, description="a name for the question: letters, digits, _")
    text: str = Field(min_length=1)
    why: bool = Field(default=False, description="also ask for the reason behind the answer")

    def answer_type(self) -> tuple[Any, Any]:
        """(annotation, Field) of the answer."""
        raise NotImplementedError

    def hint(self) -> str:
        """How to answer, as the prompt says it."""
        raise NotImplementedError

    def as_row(self, answer: Any) -> tuple[str, float | None, list[str] | None]:
        """A validated answer as (text, number, list): the answer row's three answer columns."""
        return str(answer), None, None

    def for_respondent(self, key: str) -> "_Question":
        """The question as this respondent sees it (the same for every respondent unless it shuffles or blinds)."""
        return self


class _WithOptions(_Question):
    options: tuple[str, ...] = Field(min_length=2)

    @field_validator("options")
    @classmethod
    def _options_distinct(cls, options: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(options)) != len(options) or not all(o.strip() for o in options):
            raise ValueError("options must be distinct and non-empty")
        return options

    def _choice(self) -> Any:
        return Literal[self.options]  # type: ignore[valid-type]


class MultipleChoice(_WithOptions):
    """One option. Options may carry what they say to the respondent (``descriptions``, one per option), and may
    come in a seeded random order per respondent (``shuffle``) under neutral labels A, B, C... (``blind``), as
    an A/B test presents its variants (TinyTroupe's ABRandomizer, for any number of options). The answer is
    always stored as the real option."""

    type: Literal["multiple_choice"] = "multiple_choice"
    descriptions: tuple[str, ...] = Field(default=(), description="what each option says, in the order of options")
    shuffle: bool = Field(default=False, description="each respondent sees the options in a seeded random order of their own")
    blind: bool = Field(default=False, description="options are shown as A, B, C..., the answer stored by its real name")
    seed: int = 0

    @model_validator(mode="after")
    def _one_description_each(self) -> "MultipleChoice":
        if self.descriptions and len(self.descriptions) != len(self.options):
            raise ValueError(f"give one description per option ({len(self.options)}), or none")
        if self.blind and len(self.options) > len(_LETTERS):
            raise ValueError(f"blind questions take at most {len(_LETTERS)} options")
        return self

    def answer_type(self) -> tuple[Any, Any]:
        return self._choice(), Field()

    def hint(self) -> str:
        shown = [f"{o} = {d}" for o, d in zip(self.options, self.descriptions)] if self.descriptions else list(self.options)
        return "Pick one of: " + "; ".join(shown)

    def for_respondent(self, key: str) -> "_Question":
        """The options in this respondent's seeded order, labelled A, B, C... when blind (key: the persona id)."""
        if not (self.shuffle or self.blind):
            return self
        order = list(range(len(self.options)))
        if self.shuffle:
            random.Random(f"{self.seed}:{self.id}:{key}").shuffle(order)
        real = tuple(self.options[i] for i in order)
        labels = tuple(_LETTERS[n] for n in range(len(order))) if self.blind else real
        descriptions = tuple(self.descriptions[i] for i in order) if self.descriptions else (() if not self.blind else real)
        return PresentedChoice(id=self.id, text=self.text, why=self.why, options=labels, descriptions=descriptions, real=real)


_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class PresentedChoice(MultipleChoice):
    """A multiple-choice question as one respondent saw it; ``real`` is the option behind each shown one."""

    real: tuple[str, ...] = ()

    def as_row(self, answer: Any) -> tuple[str, float | None, list[str] | None]:
        return self.real[self.options.index(answer)], None, None


class Checkbox(_WithOptions):
    type: Literal["checkbox"] = "checkbox"
    min_picks: int = Field(default=1, ge=0)
    max_picks: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _picks(self) -> "Checkbox":
        top = self.max_picks if self.max_picks is not None else len(self.options)
        if not self.min_picks <= top <= len(self.options):
            raise ValueError(f"picks must satisfy min_picks <= max_picks <= {len(self.options)} options")
        return self

    @property
    def top(self) -> int:
        return self.max_picks if self.max_picks is not None else len(self.options)

    def answer_type(self) -> tuple[Any, Any]:
        """true or false per option (every option required, so strict mode keeps the shape); picks counted after."""
        fields: dict[str, Any] = {f"o{i}": (bool, Field(alias=option)) for i, option in enumerate(self.options)}
        model = create_model(f"Picks_{self.id}", __base__=_Picks, **fields)
        model.bounds = (self.min_picks, self.top)
        return model, Field()

    def hint(self) -> str:
        return f"true for each option you pick ({self.min_picks} to {self.top} of them), false for the others: " + "; ".join(self.options)

    def as_row(self, answer: Any) -> tuple[str, float | None, list[str] | None]:
        picks = [option for i, option in enumerate(self.options) if getattr(answer, f"o{i}")]
        return "; ".join(picks), None, picks


class Likert(_Question):
    type: Literal["likert"] = "likert"
    scale: tuple[int, int] = (1, 5)
    labels: tuple[str, ...] | None = Field(default=None, description="one label per point, lowest first")

    @field_validator("labels", mode="before")
    @classmethod
    def _labels_from_mapping(cls, value: Any, info: Any) -> Any:
        """Labels may be given as {point: label}; points without one get an empty label."""
        if isinstance(value, dict):
            lo, hi = info.data.get("scale", (1, 5))
            return tuple(str(value.get(p, value.get(str(p), ""))) for p in range(lo, hi + 1))
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "Likert":
        lo, hi = self.scale
        if lo >= hi:
            raise ValueError(f"scale [{lo}, {hi}]: the low end must be below the high end")
        if self.labels is not None and len(self.labels) != hi - lo + 1:
            raise ValueError(f"labels: {len(self.labels)} given for the {hi - lo + 1} points of scale [{lo}, {hi}]")
        return self

    def answer_type(self) -> tuple[Any, Any]:
        return int_range(*self.scale), Field()

    def label(self, point: int) -> str:
        return self.labels[point - self.scale[0]] if self.labels else ""

    def hint(self) -> str:
        lo, hi = self.scale
        named = [f"{p} = {self.label(p)}" for p in range(lo, hi + 1) if self.label(p)]
        return f"A whole number from {lo} to {hi}" + (f" ({'; '.join(named)})" if named else "")

    def as_row(self, answer: Any) -> tuple[str, float | None, list[str] | None]:
        return self.label(answer) or str(answer), float(answer), None


class Numeric(_Question):
    type: Literal["numeric"] = "numeric"
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _bounds(self) -> "Numeric":
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) is above max ({self.max:g})")
        return self

    def answer_type(self) -> tuple[Any, Any]:
        return float, Field(**{k: v for k, v in (("ge", self.min), ("le", self.max)) if v is not None})

    def hint(self) -> str:
        low = "" if self.min is None else f" from {self.min:g}"
        high = "" if self.max is None else f" to {self.max:g}"
        return f"A number{low}{high}"

    def as_row(self, answer: Any) -> tuple[str, float | None, list[str] | None]:
        return f"{answer:g}", float(answer), None


class Rank(_WithOptions):
    type: Literal["rank"] = "rank"
    picks: int | None = Field(default=None, ge=1, description="rank only the top picks (default: all options)")

    @model_validator(mode="after")
    def _picks(self) -> "Rank":
        if self.picks is not None and self.picks > len(self.options):
            raise ValueError(f"picks ({self.picks}) is more than the {len(self.options)} options")
        return self

    @property
    def count(self) -> int:
        return self.picks or len(self.options)

    def answer_type(self) -> tuple[Any, Any]:
        """One required property per place ("1" = best), each an enum of the options; distinct checked after."""
        fields: dict[str, Any] = {f"p{i}": (self._choice(), Field(alias=str(i + 1))) for i in range(self.count)}
        return create_model(f"Ranking_{self.id}", __base__=_Ranking, **fields), Field()

    def hint(self) -> str:
        which = "all" if self.picks is None else f"your top {self.picks} of"
        return f'Rank {which} these, each once, as places "1" (best) to "{self.count}": ' + "; ".join(self.options)

    def as_row(self, answer: Any) -> tuple[str, float | None, list[str] | None]:
        ranked = [getattr(answer, f"p{i}") for i in range(self.count)]
        return " > ".join(ranked), None, ranked


class YesNo(_Question):
    type: Literal["yes_no"] = "yes_no"

    def answer_type(self) -> tuple[Any, Any]:
        return Literal["Yes", "No"], Field()

    def hint(self) -> str:
        return "Yes or No"


class FreeText(_Question):
    type: Literal["free_text"] = "free_text"
    max_length: int = Field(default=400, ge=20, le=4000)

    def answer_type(self) -> tuple[Any, Any]:
        return str, Field(min_length=1, max_length=self.max_length)

    def hint(self) -> str:
        return f"In your own words (at most {self.max_length} characters)"


Question = Annotated[
    Union[MultipleChoice, Checkbox, Likert, Numeric, Rank, YesNo, FreeText], Field(discriminator="type")
]
QuestionType = Literal["multiple_choice", "checkbox", "likert", "numeric", "rank", "yes_no", "free_text"]


@lru_cache(maxsize=256)
def answer_model(question: _Question) -> type[BaseModel]:
    """The reply to one question: its answer, and its reason when the question asks why."""
    fields: dict[str, Any] = {"answer": question.answer_type()}
    if question.why:
        fields["why"] = (str, Field(max_length=WHY_MAX, description="your reason, in a sentence"))
    return create_model(f"Answer_{question.id}", **fields)


@lru_cache(maxsize=64)
def reply_model(questions: tuple[_Question, ...]) -> type[BaseModel]:
    """The reply to several questions asked at once: one answer object per question id.

    Fields are named by position and aliased to the ids, so an id may be any name (even ``schema``).
    """
    return create_model("SurveyReply", **{f"q{i}": (answer_model(q), Field(alias=q.id)) for i, q in enumerate(questions)})
