"""The export's choices, importable without pydantic so the CLI can offer them and still start fast."""

from __future__ import annotations

from enum import Enum


class Format(str, Enum):
    openai_chat = "openai-chat"
    sharegpt = "sharegpt"
    parquet = "parquet"


class Per(str, Enum):
    agent = "agent"
    conversation = "conversation"


SUFFIXES = {Format.openai_chat: (".jsonl",), Format.sharegpt: (".json",), Format.parquet: (".parquet",)}
