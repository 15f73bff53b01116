"""Training formats: OpenAI fine-tuning chat JSONL, ShareGPT JSON, Parquet with a ``messages`` column.

Every conversation is validated against OpenAI's chat fine-tuning rules before anything is
written (an optional system message first, then user and assistant strictly alternating, from a
user turn, non-empty content, at least one assistant message), so every format carries the same
well-formed turns. A conversation that breaks a rule is a bug in the export, not in the run:
it stops the export and nothing is written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..atomic import atomic_path, write_atomic
from .conversations import Conversation
from .options import Format


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: str = Field(min_length=1)

    @field_validator("content")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("content is blank")
        return value


class ChatExample(BaseModel):
    """One line of an OpenAI chat fine-tuning file: ``{"messages": [...]}`` and nothing else."""

    model_config = ConfigDict(extra="forbid")

    messages: list[ChatMessage] = Field(min_length=1)

    @model_validator(mode="after")
    def _turns(self) -> "ChatExample":
        roles = [m.role for m in self.messages]
        body = roles[1:] if roles[0] == "system" else roles
        if "system" in body:
            raise ValueError("a system message may only come first")
        expected = ["user" if i % 2 == 0 else "assistant" for i in range(len(body))]
        if body != expected:
            raise ValueError(f"roles must alternate user/assistant from a user turn, got {body}")
        if "assistant" not in body:
            raise ValueError("needs at least one assistant message")
        return self


SHAREGPT_ROLES = {"system": "system", "user": "human", "assistant": "gpt"}


def validate(conversation: Conversation) -> ChatExample:
    return ChatExample.model_validate({"messages": [m.model_dump() for m in conversation.messages]})


def _example_id(conversation: Conversation) -> str:
    return "/".join(part for part in (conversation.run_id, conversation.world, conversation.agent, conversation.call_key) if part)


def _openai_chat(examples: list[tuple[Conversation, ChatExample]], out: Path) -> None:
    lines = (example.model_dump_json() for _, example in examples)
    write_atomic(out, "".join(line + "\n" for line in lines))


def _sharegpt(examples: list[tuple[Conversation, ChatExample]], out: Path) -> None:
    records = [
        {
            "id": _example_id(conversation),
            "conversations": [{"from": SHAREGPT_ROLES[m.role], "value": m.content} for m in example.messages],
        }
        for conversation, example in examples
    ]
    write_atomic(out, json.dumps(records, ensure_ascii=False, indent=1) + "\n")


def _parquet(examples: list[tuple[Conversation, ChatExample]], out: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    schema = pa.schema(
        [
            ("id", pa.string()), ("run_id", pa.string()), ("world", pa.string()), ("agent", pa.string()),
            ("purpose", pa.string()), ("call_key", pa.string()), ("messages", pa.list_(message)),
        ]
    )
    table = pa.Table.from_pylist(
        [
            {
                "id": _example_id(conversation),
                "run_id": conversation.run_id,
                "world": conversation.world,
                "agent": conversation.agent,
                "purpose": conversation.purpose,
                "call_key": conversation.call_key,
                "messages": [m.model_dump() for m in example.messages],
            }
            for conversation, example in examples
        ],
        schema=schema,
    )
    with atomic_path(out) as tmp:
        pq.write_table(table, tmp, compression="zstd")


WRITERS: dict[Format, Callable[[list[tuple[Conversation, ChatExample]], Path], None]] = {
    Format.openai_chat: _openai_chat,
    Format.sharegpt: _sharegpt,
    Format.parquet: _parquet,
}


def write(conversations: list[Conversation], fmt: Format, out: Path) -> int:
    """Validate every conversation, then write them all in fmt to out; returns how many."""
    examples = [(conversation, validate(conversation)) for conversation in conversations]
    WRITERS[fmt](examples, out)
    return len(examples)
