"""Answer rows: one validated answer of one agent to one question, and the ``answers`` dataset's schema.

``answer`` is always set (the answer as text: the option, the Likert label or number, the picks
joined), so ``select answer, count(*) from answers group by 1`` reads as expected; the typed
columns carry what arithmetic needs: ``answer_number`` for Likert and numeric questions,
``answer_list`` for checkbox picks and rankings (in order).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

from pydantic import BaseModel, ConfigDict

from .questions import QuestionType

if TYPE_CHECKING:
    import pyarrow as pa


class AnswerRow(BaseModel):
    model_config = ConfigDict(frozen=True)

    agent: str
    persona_id: str
    question_id: str
    question_type: QuestionType
    answer: str
    answer_number: float | None = None
    answer_list: list[str] | None = None
    why: str | None = None


def answers_schema() -> "pa.Schema":
    """The ``answers`` dataset's Arrow schema (``run_id`` is the hive partition, as for every dataset)."""
    from ..datasets.schemas import ANSWERS

    return ANSWERS


def answers_table(rows: Iterable[AnswerRow | dict[str, Any]]) -> "pa.Table":
    """Answer rows (models or their JSON dumps) as an Arrow table with exactly answers_schema()."""
    from ..datasets.io import table_from_rows

    dicts = [row.model_dump() if isinstance(row, AnswerRow) else AnswerRow.model_validate(row).model_dump() for row in rows]
    return table_from_rows(dicts, answers_schema())
