"""TinyTroupe's ``Normalizer``: free-text answers grouped into at most k categories by the LLM.

Two kinds of call: one names the categories from the distinct texts, then each batch of texts is
assigned to them with a reply schema of one required enum of the categories per text, so every
text lands in exactly one category. Texts are de-duplicated and
sorted before either call, so the same texts make the same prompts: a rerun is answered by the call
cache, and the categories do not change between reruns or with the order the answers came in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, Field, create_model, field_validator

from .. import prompts
from ..llm import default_gateway, loop

if TYPE_CHECKING:
    import polars as pl

    from ..llm import LLMGateway

BATCH = 40  # texts per assignment call: long enough to be cheap, short enough for small models
LABEL_MAX = 80


def _distinct_labels(labels: list[str]) -> list[str]:
    cleaned = [label.strip() for label in labels]
    if len({c.lower() for c in cleaned}) != len(cleaned) or not all(cleaned):
        raise ValueError("category labels must be distinct and non-empty")
    return cleaned


@lru_cache(maxsize=32)
def _categories_model(n: int, max_length: int) -> type[BaseModel]:
    label = Annotated[str, Field(min_length=1, max_length=max_length)]
    return create_model(
        "Categories",
        categories=(list[label], Field(min_length=1, max_length=n)),  # type: ignore[valid-type]
        __validators__={"distinct": field_validator("categories")(lambda cls, v: _distinct_labels(v))},
    )


@lru_cache(maxsize=64)
def _assignment_model(categories: tuple[str, ...], count: int) -> type[BaseModel]:
    """One required property per text (``t1``, ``t2``, ... as the prompt numbers them), each an enum.

    Properties rather than an array of ``count`` items: OpenAI's strict mode drops minItems and
    maxItems but keeps required properties, so every backend returns exactly one label per text.
    """
    choice: Any = Literal[categories]  # type: ignore[valid-type]
    return create_model("Assignment", **{f"t{i}": (choice, Field()) for i in range(1, count + 1)})


def _distinct_sorted(texts: Sequence[str]) -> list[str]:
    return sorted({t.strip() for t in texts if t and t.strip()})


async def acategorize(texts: Sequence[str], n: int, gateway: "LLMGateway", max_length: int | None = None) -> list[str]:
    """At most n category labels for texts (one call; the same texts give the same call)."""
    elements = _distinct_sorted(texts)
    if not elements:
        return []
    messages = [
        {"role": "system", "content": prompts.render("normalize_system")},
        {"role": "user", "content": prompts.render("normalize_categories", elements=elements, n=n, max_length=max_length)},
    ]
    reply = await gateway.astructured(messages, _categories_model(n, max_length or LABEL_MAX), purpose="normalize:categories")
    return list(reply.value.categories)  # type: ignore[attr-defined]


async def aassign(texts: Sequence[str], categories: Sequence[str], gateway: "LLMGateway") -> dict[str, str]:
    """Each distinct text's category, in batches of BATCH texts, concurrently."""
    elements = _distinct_sorted(texts)
    labels = tuple(categories)

    async def batch(chunk: list[str]) -> list[str]:
        messages = [
            {"role": "system", "content": prompts.render("normalize_system")},
            {"role": "user", "content": prompts.render("normalize_apply", categories=labels, elements=chunk)},
        ]
        reply = await gateway.astructured(messages, _assignment_model(labels, len(chunk)), purpose="normalize:assign")
        return [getattr(reply.value, f"t{i}") for i in range(1, len(chunk) + 1)]

    chunks = [elements[i : i + BATCH] for i in range(0, len(elements), BATCH)]
    assigned = await asyncio.gather(*(batch(chunk) for chunk in chunks))
    return {text: label for chunk, labels_ in zip(chunks, assigned) for text, label in zip(chunk, labels_)}


async def anormalize(texts: Sequence[str | None], k: int, gateway: "LLMGateway") -> list[str | None]:
    """The category of each text, in order (None stays None): what a ``category`` column is made of."""
    present = [t for t in texts if t]
    categories = await acategorize(present, k, gateway)
    mapping = await aassign(present, categories, gateway) if categories else {}
    return [mapping.get(t.strip()) if t else None for t in texts]


class Normalizer:
    """Normalizes elements into at most n categories; ``normalize`` maps texts to them, cached in memory."""

    def __init__(
        self, elements: Sequence[str], n: int, verbose: bool = False, max_length: int | None = None,
        *, gateway: "LLMGateway | None" = None,
    ) -> None:
        self.elements = _distinct_sorted(elements)
        self.n = n
        self.verbose = verbose
        self.max_length = max_length
        self.gateway = gateway or default_gateway()
        self.normalizing_map: dict[str, str] = {}
        self.categories = loop.run_sync(acategorize(self.elements, n, self.gateway, max_length))
        if verbose:
            print(f"Categories for {len(self.elements)} texts: {self.categories}")
        self.normalized_elements: dict[str, list[str]] | None = None

    def normalize(self, element_or_elements: str | list[str]) -> str | list[str]:
        """The category of one text (a string) or of each text (a list, same order)."""
        if isinstance(element_or_elements, str):
            texts = [element_or_elements]
        elif isinstance(element_or_elements, list):
            texts = element_or_elements
        else:
            raise ValueError("normalize takes a string or a list of strings")
        missing = [t for t in texts if t.strip() not in self.normalizing_map]
        if missing:
            self.normalizing_map.update(loop.run_sync(aassign(missing, self.categories, self.gateway)))
        result = [self.normalizing_map[t.strip()] for t in texts]
        if self.verbose:
            print(f"Normalized {len(texts)} texts: {result}")
        return result[0] if isinstance(element_or_elements, str) else result

    def normalized_mapping(self) -> dict[str, list[str]]:
        """Each category and the elements in it (assigns the elements given at construction on first use)."""
        if self.normalized_elements is None:
            self.normalize(list(self.elements))
            mapping: dict[str, list[str]] = {c: [] for c in self.categories}
            for element in self.elements:
                mapping[self.normalizing_map[element]].append(element)
            self.normalized_elements = mapping
        return self.normalized_elements


def normalize_answers(
    answers: "pl.DataFrame", k: int, gateway: "LLMGateway", *, question_ids: Sequence[str] | None = None
) -> "pl.DataFrame":
    """The answers with a ``category`` column: each free-text question's answers in at most k categories.

    Questions are normalized separately (each gets its own categories); rows of other questions, and
    of questions not in question_ids when given, get a null category. What a normalisation stage runs.
    """
    import polars as pl

    wanted = question_ids if question_ids is not None else (
        answers.filter(pl.col("question_type") == "free_text")["question_id"].unique(maintain_order=True).to_list()
    )

    async def every_question() -> list[list[str | None]]:
        return list(
            await asyncio.gather(
                *(anormalize(answers.filter(pl.col("question_id") == q)["answer"].to_list(), k, gateway) for q in wanted)
            )
        )

    categories = dict(zip(wanted, loop.run_sync(every_question())))
    column: list[str | None] = [None] * answers.height
    positions: dict[str, int] = {q: 0 for q in wanted}
    for index, question in enumerate(answers["question_id"].to_list()):
        if question in categories:
            column[index] = categories[question][positions[question]]
            positions[question] += 1
    return answers.with_columns(category=pl.Series(column, dtype=pl.String))
