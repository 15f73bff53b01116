"""The Normalizer against the fake server: k categories, every text in one, stable across reruns."""

from __future__ import annotations

import random
from typing import Any

from tests.fake_openai import FakeOpenAI
from tests.scripted import schema_of, user_text
from troupe.extraction import Normalizer
from troupe.extraction.normalizer import BATCH, anormalize
from troupe.llm import LLMGateway, loop

ANSWERS = [f"{topic} answer {i}" for i in range(30) for topic in ("price", "taste", "opening hours")]
CATEGORIES = ["Price", "Taste", "Hours"]


def name_categories(body: dict[str, Any]) -> dict[str, Any] | None:
    """The LLM's categories (scripted); assignments get the fake's schema-valid default, an enum pick."""
    if "Group these" in user_text(body):
        return {"categories": CATEGORIES}
    return None


def test_texts_land_in_at_most_k_categories_and_reruns_are_stable(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    fake.responder = name_categories
    normalizer = Normalizer(ANSWERS, n=3, gateway=gateway)
    assert normalizer.categories == CATEGORIES
    labels = normalizer.normalize(ANSWERS)
    assert isinstance(labels, list) and len(labels) == len(ANSWERS) and set(labels) <= set(CATEGORIES)
    batches = -(-len(ANSWERS) // BATCH)
    assert fake.calls == 1 + batches
    assert normalizer.normalize(ANSWERS[5]) == labels[5] and fake.calls == 1 + batches  # remembered
    # The batches go out concurrently, so they reach the server in any order.
    batch_schemas = [schema_of(request)["properties"] for request in fake.requests[1 : 1 + batches]]
    assert sorted(len(p) for p in batch_schemas) == sorted([BATCH] * (len(ANSWERS) // BATCH) + [len(ANSWERS) % BATCH] * bool(len(ANSWERS) % BATCH))
    assert all(p["enum"] == CATEGORIES for properties in batch_schemas for p in properties.values())
    mapping = normalizer.normalized_mapping()
    assert sorted(t for texts in mapping.values() for t in texts) == sorted(ANSWERS)

    shuffled = ANSWERS[:]
    random.Random(7).shuffle(shuffled)
    again = Normalizer(shuffled, n=3, gateway=gateway)  # the same texts in another order: the same calls, all cached
    assert again.normalize(ANSWERS) == labels and fake.calls == 1 + batches


def test_the_category_column_keeps_order_and_gaps(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    fake.responder = name_categories
    column = loop.run_sync(anormalize(["price answer 1", None, "taste answer 2", "price answer 1"], 3, gateway))
    assert column[1] is None and column[0] == column[3] and all(c in CATEGORIES for c in column if c)
    categorise = next(body for body in fake.requests if "Group these" in user_text(body))
    assert "at most 3 categories" in user_text(categorise) and user_text(categorise).count("price answer 1") == 1


def test_normalize_answers_adds_a_category_per_free_text_question(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    import polars as pl

    from troupe.extraction.normalizer import normalize_answers

    fake.responder = name_categories
    answers = pl.DataFrame(
        {
            "agent": ["A", "A", "B", "B"],
            "question_id": ["wish", "ad", "wish", "ad"],
            "question_type": ["free_text", "multiple_choice", "free_text", "multiple_choice"],
            "answer": ["price answer 1", "X", "taste answer 2", "Y"],
        }
    )
    out = normalize_answers(answers, 3, gateway)
    assert out.columns == [*answers.columns, "category"]
    assert out["category"][1] is None and out["category"][3] is None
    assert out["category"][0] in CATEGORIES and out["category"][2] in CATEGORIES
    assert fake.calls == 2  # one categorisation and one assignment batch, for the one free-text question
