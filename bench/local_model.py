"""Embedded model figures: server start, prompt and decode speed, structured-output parse share.

    python -m bench.local_model [--turns 50]

Starts the embedded llama.cpp server on a free port (the real SmolLM2 weights), then measures from
one run: seconds until it answers; prompt tokens/s (a long prompt, one output token); decode
tokens/s (a short prompt, a long answer); and over --turns agent turns with the real action schema
(call cache off), the share of replies that parsed on the first try and after the repair round.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import openai
from rich.console import Console
from rich.table import Table

from tests.conftest import free_port
from troupe import TinyPerson
from troupe.config import load_config
from troupe.llm import LLMGateway, LLMStructuredOutputError
from troupe.local_model import base_url, ensure_server, stop_server

PEOPLE = [("Ana", "nurse"), ("Ben", "bus driver"), ("Chloe", "student"), ("Dev", "chef"), ("Eva", "farmer")]
STIMULI = [
    "What do you think of the new bakery next door?",
    "Would you pay 4 euros for a croissant?",
    "Tell me about your morning.",
    "The bus was late again today. How do you feel about it?",
    "Should the town build a new park?",
    "What is your favourite meal and why?",
    "Would you try a meal-kit delivery service?",
    "How do you usually spend your weekend?",
    "Is remote work good for people?",
    "What would you change about your job?",
]



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config({"local.port": free_port(), "cache.enabled": "false", "simulation.transcript": "false", "datasets.root": tmp})
        started = time.perf_counter()
        ensure_server(config.local)
        start_s = time.perf_counter() - started
        gateway = LLMGateway(config)
        try:
            # Raw speed through the openai client (a 1-token answer is "truncated" for the gateway).
            client = openai.OpenAI(base_url=base_url(config.local), api_key="local")
            long_prompt = [{"role": "user", "content": " ".join(STIMULI * 12)}]
            t = time.perf_counter()
            usage = client.chat.completions.create(model=config.llm.model, messages=long_prompt, max_tokens=1).usage
            prompt_tps = usage.prompt_tokens / (time.perf_counter() - t)
            story = [{"role": "user", "content": "Write a long story about a baker."}]
            t = time.perf_counter()
            usage = client.chat.completions.create(model=config.llm.model, messages=story, max_tokens=200).usage
            decode_tps = usage.completion_tokens / (time.perf_counter() - t)

            first_try = parsed = 0
            turn_seconds = 0.0
            for i in range(args.turns):
                name, job = PEOPLE[i % len(PEOPLE)]
                person = TinyPerson(name, gateway=gateway, config=config)
                person.define("age", 30 + i % 40).define("occupation", {"title": job})
                person.listen(STIMULI[i % len(STIMULI)], source="Interviewer")
                before = len(gateway.ledger.records)
                t = time.perf_counter()
                try:
                    person.act(n=1)
                    parsed += 1
                except LLMStructuredOutputError:
                    pass
                turn_seconds += time.perf_counter() - t
                first_try += not any(r.purpose.endswith(":repair") for r in gateway.ledger.records[before:])
        finally:
            stop_server(config.local)

    table = Table(title=f"Embedded model (SmolLM2-135M-Instruct Q4_1, {config.local.n_threads} threads)", show_header=False)
    table.add_row("server start to first answer", f"{start_s:.2f} s")
    table.add_row("prompt processing", f"{prompt_tps:.0f} tokens/s")
    table.add_row("decode", f"{decode_tps:.0f} tokens/s")
    table.add_row("agent turns", str(args.turns))
    table.add_row("mean seconds per turn", f"{turn_seconds / args.turns:.2f}")
    table.add_row("parsed on the first try", f"{first_try}/{args.turns} ({first_try / args.turns:.0%})")
    table.add_row("parsed after the repair round", f"{parsed}/{args.turns} ({parsed / args.turns:.0%})")
    Console().print(table)


if __name__ == "__main__":
    main()
