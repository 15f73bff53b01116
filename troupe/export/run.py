"""Exporting one run: ``export_run(root, run_id, fmt, out, per)`` reads the run's ``events`` and ``personas`` through
DuckDB, builds one conversation per agent (or per world), validates each against OpenAI's chat
fine-tuning format and writes them all at once (nothing is written when anything fails).
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel

from ..errors import ConfigError, SpecError
from .conversations import Conversation, conversations
from .formats import write
from .options import SUFFIXES, Format, Per


class ExportSummary(BaseModel):
    run_id: str
    format: Format
    per: Per
    out: Path
    conversations: int
    messages: int


def run_conversations(root: str | os.PathLike[str], run_id: str, per: Per = Per.agent) -> list[Conversation]:
    """The run's conversations, per agent or per world (SpecError when the run does not exist)."""
    from ..run_data import open_run

    with open_run(root, run_id) as run:
        events = run.rows("SELECT world, seq, step, agent, direction, type, source, target, content FROM events ORDER BY world, seq")
        specs = [r["spec_json"] for r in run.rows("SELECT spec_json FROM personas")] if run.has("personas", "spec_json") else []
    return conversations(run_id, events, specs, per)


def run_calls(root: str | os.PathLike[str], run_id: str) -> list[Conversation]:
    """The run's stored prompt/completion pairs (``[datasets] store_prompts``), one per distinct call."""
    from ..run_data import open_run
    from .calls import CALLS_SQL, call_conversations

    with open_run(root, run_id) as run:
        rows = run.rows(CALLS_SQL) if run.has("llm_calls", "messages", "completion") else []
    return call_conversations(run_id, rows)


def export_run(
    root: str | os.PathLike[str], run_id: str, fmt: Format, out: str | os.PathLike[str], per: Per = Per.agent, calls: bool = False
) -> ExportSummary:
    """Write the run's conversations (or, with calls, its LLM calls' prompt/completion pairs) to out in fmt.

    out's suffix must match the format.
    """
    out = Path(out)
    if out.suffix.lower() not in SUFFIXES[fmt]:
        raise ConfigError(f"--out {out}: --format {fmt.value} writes {' or '.join(SUFFIXES[fmt])}; name the file e.g. {out.stem}{SUFFIXES[fmt][0]}")
    if out.is_dir():
        raise ConfigError(f"--out {out}: is a directory; give a file name")
    if calls:
        found = run_calls(root, run_id)
        if not found:
            raise SpecError(
                f"run {run_id}: llm_calls holds no prompts; run the scenario again with --set datasets.store_prompts=true "
                "(the call cache answers its calls for free) and export that run"
            )
    else:
        found = run_conversations(root, run_id, per)
    if not found:
        raise SpecError(f"run {run_id}: no agent acted, so there is no conversation to export; check its events with troupe show {run_id}")
    count = write(found, fmt, out)
    return ExportSummary(
        run_id=run_id, format=fmt, per=per, out=out, conversations=count, messages=sum(len(c.messages) for c in found)
    )
