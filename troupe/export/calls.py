"""A run's LLM calls as prompt/completion pairs, for distillation datasets.

With ``[datasets] store_prompts = true`` every ``llm_calls`` row keeps the exact request messages
(JSON text) and the reply's text. Each distinct call (by ``key``: a call answered again from the
cache is the same pair) becomes one conversation: the request's messages, then the completion as
the assistant. A system message after the first one (the schema instruction the gateway appends
in ``json_object`` mode) joins the message before it, so the prompt's text and order stay whole
and the turns meet the chat fine-tuning format.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from .conversations import Conversation, Message

CALLS_SQL = (
    "SELECT key, purpose, messages, completion FROM llm_calls "
    "WHERE messages IS NOT NULL AND completion IS NOT NULL ORDER BY purpose, seq, key"
)


def _turns(request: list[dict[str, Any]], completion: str) -> list[Message]:
    merged: list[dict[str, str]] = []
    for message in request:
        role, content = str(message.get("role", "")), str(message.get("content") or "")
        if role == "system" and merged:
            merged[-1]["content"] = f"{merged[-1]['content']}\n\n{content}".strip()
        else:
            merged.append({"role": role, "content": content})
    return [Message.model_validate(m) for m in [*merged, {"role": "assistant", "content": completion}]]


def call_conversations(run_id: str, rows: Iterable[dict[str, Any]]) -> list[Conversation]:
    """One conversation per distinct call (rows of ``CALLS_SQL``), in the rows' order."""
    seen: set[str] = set()
    result = []
    for row in rows:
        if row["key"] in seen or not row["completion"].strip():  # a blank reply teaches nothing (and the format refuses it)
            continue
        seen.add(row["key"])
        messages = _turns(json.loads(row["messages"]), row["completion"])
        result.append(Conversation(run_id=run_id, world="", agent=None, purpose=row["purpose"], call_key=row["key"], messages=messages))
    return result
