"""Surveys of personas: typed questions, validated answers, answer rows and the ``answers`` schema.

``Survey([MultipleChoice(...), Likert(...)]).ask(agents)`` returns one :class:`AnswerRow` per agent
and question. A pipeline task calls :func:`ask_shard` (or, from async code, :func:`aask_shard`)
per shard of agents and writes the rows with :func:`answers_table` (schema: :func:`answers_schema`).
"""

from __future__ import annotations

from .asking import SurveyError, aask_agent, aask_shard, agent_state, persona_id
from .questions import Checkbox, FreeText, Likert, MultipleChoice, Numeric, Question, QuestionType, Rank, YesNo
from .rows import AnswerRow, answers_schema, answers_table
from .shard import SurveyResult, ask_shard
from .survey import Survey

__all__ = [
    "AnswerRow", "Checkbox", "FreeText", "Likert", "MultipleChoice", "Numeric", "Question", "QuestionType",
    "Rank", "Survey", "SurveyError", "SurveyResult", "YesNo", "aask_agent", "aask_shard", "agent_state",
    "answers_schema", "answers_table", "ask_shard", "persona_id",
]
