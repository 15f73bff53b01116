"""Survey and extraction figures: prompt tokens per answered question, trimming, a large survey's schedule.

    python -m bench.survey [--personas 1000] [--latency 0.3] [--slots 64]

Against the fake OpenAI-compatible server in a process of its own, which answers checkbox
questions with one pick (tests/survey_replies.py) and the rest schema-valid at random (prompt
tokens are its four-characters-a-token count, the same for every row, so rows compare with each other):

1. Prompt tokens per answered question for a 5-question survey, questions asked together (one
   call per persona) or one call per question, for a fresh persona and for one that lived through
   a 40-event simulation (its memory is in the prompt).
2. Prompt tokens of one extraction over a 300-event record: the whole record, then trimmed to the
   objective ([extraction] history_tokens, 3,000 by default).
3. --personas personas x 5 questions with --latency seconds per call and --slots concurrent slots
   (gateway max_concurrency = --slots): wall time against the ideal schedule,
   ceil(calls / slots) x latency, for both ways of asking, then a rerun (answered by the call cache).
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from tests.fake_process import FakeOpenAIProcess
from tests.survey_replies import valid_picks
from troupe import TinyPerson
from troupe.config import load_config
from troupe.extraction import FieldSpec
from troupe.extraction.core import messages_for
from troupe.extraction.history import estimate_tokens
from troupe.llm import LLMGateway
from troupe.survey import Checkbox, Likert, MultipleChoice, Numeric, Survey, YesNo

QUESTIONS = [
    MultipleChoice(id="ad", text="Which ad would make you visit the bakery?", options=("Fresh bread daily", "Half price on Mondays", "Local organic flour")),
    Checkbox(id="days", text="On which days do you usually buy bread?", options=("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"), min_picks=1, max_picks=3),
    Likert(id="like", text="How much do you like the idea of a new bakery on your street?", scale=(1, 7), why=True),
    Numeric(id="pay", text="How many euros would you pay for a sourdough loaf?", min=0, max=20),
    YesNo(id="visit", text="Will you visit the bakery in its first week?"),
]
OCCUPATIONS = ["nurse", "driver", "chef", "teacher", "engineer", "student"]


def personas(n: int) -> list[dict[str, Any]]:
    return [
        {"name": f"Person {i:04d}", "age": 20 + i % 60, "nationality": "French", "residence": "Lyon",
         "occupation": {"title": OCCUPATIONS[i % len(OCCUPATIONS)], "organization": "self-employed"},
         "personality": {"traits": ["curious", "frugal", "sociable"][: 1 + i % 3]}}
        for i in range(n)
    ]


def gateway_for(url: str, root: Path, slots: int) -> LLMGateway:
    # The whole schema goes to the server (as to llama.cpp), so the fake honours every bound.
    return LLMGateway(
        load_config(
            {
                "llm.api_type": "openai", "llm.base_url": url, "llm.model": "fake-model", "llm.max_concurrency": slots,
                "llm.structured_output": "json_object_schema", "llm.timeout_s": 120,
                "cache.dir": str(root / "cache"), "datasets.root": str(root / "datasets"), "simulation.transcript": "false",
            },
            cwd=root,
            environ={},
        )
    )


def lived(persona: dict[str, Any], gateway: LLMGateway) -> TinyPerson:
    agent = TinyPerson(persona=persona, gateway=gateway, transcript=False)
    for i in range(20):
        agent.listen(f"Have you seen the bakery that opened on rue Mercière? Day {i}, the queue was long again.", source="Neighbour")
        agent.think(f"I keep thinking about the bakery, day {i}; I might go on Saturday.")
    return agent


def token_table(url: str, root: Path) -> Table:
    table = Table(title="Prompt tokens per answered question (5 questions)")
    for column in ("respondent", "asked", "calls", "prompt tokens", "per answered question"):
        table.add_column(column, justify="right")
    sample = personas(20)
    for label, build in (("fresh persona", lambda g: sample), ("after 40 events", lambda g: [lived(p, g) for p in sample])):
        for together in (True, False):
            gateway = gateway_for(url, root / f"tokens-{label}-{together}", 8)
            survey = Survey(QUESTIONS, together=together)
            rows = survey.ask(build(gateway), gateway=gateway)
            records = gateway.ledger.records
            prompt = sum(r.prompt_tokens for r in records)
            table.add_row(label, "together" if together else "one by one", str(len(records)), str(prompt), f"{prompt / len(rows):.0f}")
    return table


def trimming_table() -> Table:
    config = load_config({"simulation.transcript": "false"}, environ={})
    agent = TinyPerson("Lisa", config=config, transcript=False)
    for i in range(150):
        agent.listen(f"Lovely weather again today, number {i}; the sun is out over the Saône.", source="Neighbour")
        agent.think(f"I should water the plants on the balcony, day {i}.")
        if i in (40, 110):
            agent.think("Four euros for a croissant is too expensive; I will not pay that price.")
    objective = "Would Lisa pay four euros for a croissant, and why?"
    fields = {"pays": FieldSpec(type="bool"), "reason": FieldSpec(type="str")}
    table = Table(title="One extraction over a 300-event record")
    for column in ("record shown", "prompt tokens"):
        table.add_column(column, justify="right")
    for label, budget in (("whole record", None), ("trimmed (history_tokens 3000)", 3000), ("trimmed (history_tokens 1000)", 1000)):
        messages = messages_for(objective, "Lisa", agent.state.episodes, fields, history_tokens=budget)
        table.add_row(label, str(sum(estimate_tokens(m["content"]) for m in messages)))
    return table


def schedule_table(url: str, fake: FakeOpenAIProcess, root: Path, n: int, latency: float, slots: int) -> Table:
    table = Table(title=f"{n} personas x {len(QUESTIONS)} questions; {latency:g} s latency, {slots} slots")
    for column in ("asked", "run", "answers", "LLM calls", "wall s", "ideal s", "wall / ideal", "peak concurrency"):
        table.add_column(column, justify="right")
    people = personas(n)
    for together in (True, False):
        gateway = gateway_for(url, root / f"schedule-{together}", slots)
        survey = Survey(QUESTIONS, together=together)
        for run in ("first", "rerun"):
            fake.reset()
            started = time.perf_counter()
            rows = survey.ask(people, gateway=gateway)
            wall = time.perf_counter() - started
            stats = fake.stats()
            ideal = math.ceil(stats["calls"] / slots) * latency
            table.add_row(
                "together" if together else "one by one", run, str(len(rows)), str(stats["calls"]), f"{wall:.2f}",
                f"{ideal:.2f}", f"{wall / ideal:.2f}" if ideal else "-", str(stats["peak_concurrency"]),
            )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--personas", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--slots", type=int, default=64)
    args = parser.parse_args()
    console = Console(width=120)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with FakeOpenAIProcess(responder=valid_picks) as fast:
            console.print(token_table(fast.url, root))
        console.print(trimming_table())
        with FakeOpenAIProcess(latency_s=args.latency, slots=args.slots, responder=valid_picks) as slow:
            console.print(schedule_table(slow.url, slow, root, args.personas, args.latency, args.slots))


if __name__ == "__main__":
    main()
