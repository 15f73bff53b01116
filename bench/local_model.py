"""Embedded model figures: start, prompt and decode speed, and what agent turns on it read like.

    python -m bench.local_model [--turns 30] [--threads N] [--busy N] [--model-path FILE.gguf]

Starts the embedded llama.cpp server on a free port (the real SmolLM2 weights) and measures, from
one run: seconds until it answers; prompt tokens/s (a ~1,000-token prompt, one output token);
decode tokens/s (a short prompt, a long answer); then --turns agent turns with the real prompt and
action schema (call cache off; people from troupe's demo and a few more, each asked one question):

- valid JSON: the turn's first reply parsed into the action schema (no repair, no resample);
- copies the prompt: some TALK/THINK content repeats a run of >= 8 (and, stricter, >= 5)
  consecutive words of the prompt the model was given (lower-cased, punctuation dropped);
- answers the stimulus: some TALK shares a content word with the question (a word of >= 4
  letters outside a stop list, compared on its first 5 letters so "croissants" matches
  "croissant") and does not copy the prompt (>= 8 words). A rough, stated proxy: it rewards
  staying on topic, not a good answer.

--busy N runs N processes that spin on the CPU throughout (a loaded machine); --threads sets
[local] n_threads; --wait-policy sets the server's OMP_WAIT_POLICY (troupe's default is PASSIVE:
llama.cpp's threads sleep rather than spin while they wait for each other); --turns 0 measures the
speeds only. The load average (as ``uptime`` shows it) is printed before and after.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import openai
from rich.console import Console
from rich.table import Table

from tests.conftest import free_port
from troupe import TinyPerson
from troupe.config import load_config
from troupe.llm import LLMError, LLMGateway
from troupe.local_model import base_url, ensure_server, stop_server

PEOPLE: list[dict[str, Any]] = [  # the demo's two neighbours first, then three more
    {"name": "Ana", "age": 34, "occupation": {"title": "Nurse"}, "personality": {"traits": ["You are warm and curious.", "You love trying new food."]}},
    {"name": "Ben", "age": 61, "occupation": {"title": "Retired bus driver"}, "personality": {"traits": ["You are thrifty and a bit grumpy.", "You distrust anything new."]}},
    {"name": "Chloe", "age": 20, "occupation": {"title": "Student"}, "personality": {"traits": ["You are shy.", "You are always short of money."]}},
    {"name": "Dev", "age": 45, "occupation": {"title": "Chef"}, "personality": {"traits": ["You are proud of your cooking."]}},
    {"name": "Eva", "age": 52, "occupation": {"title": "Farmer"}, "personality": {"traits": ["You get up at five.", "You speak plainly."]}},
]
STIMULI = [
    "A new bakery opened next door. Its croissants cost 4 euros. Would you try it?",
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
STOP = set(
    "about after again also been being could does doing from have having here into just like more most much must "
    "only other over same should some such than that their them then there these they this those very want were "
    "what when where which while will with would your yours today tell".split()
)


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def copies(content: str, prompt_words: list[str], n: int) -> bool:
    """Whether content repeats a run of n consecutive words of the prompt."""
    grams = {tuple(prompt_words[i : i + n]) for i in range(len(prompt_words) - n + 1)}
    said = words(content)
    return any(tuple(said[i : i + n]) in grams for i in range(len(said) - n + 1))


def topic_words(text: str) -> set[str]:
    return {w[:5] for w in words(text) if len(w) >= 4 and w not in STOP}


def _spin() -> None:
    while True:
        pass


def speeds(config: Any) -> tuple[float, float]:
    """Prompt and decode tokens/s through the openai client (a 1-token answer is "truncated" for the gateway)."""
    client = openai.OpenAI(base_url=base_url(config.local), api_key="local", timeout=3600)
    long_prompt = [{"role": "user", "content": " ".join(STIMULI * 8)}]
    t = time.perf_counter()
    usage = client.chat.completions.create(model=config.llm.model, messages=long_prompt, max_tokens=1).usage
    prompt_tps = usage.prompt_tokens / (time.perf_counter() - t)
    story = [{"role": "user", "content": "Write a long story about a baker."}]
    t = time.perf_counter()
    usage = client.chat.completions.create(model=config.llm.model, messages=story, max_tokens=150).usage
    return prompt_tps, usage.completion_tokens / (time.perf_counter() - t)


def turns(config: Any, gateway: LLMGateway, count: int) -> dict[str, Any]:
    stats = {"turns": count, "valid": 0, "failed": 0, "copy8": 0, "copy5": 0, "answers": 0, "seconds": 0.0, "samples": []}
    for i in range(count):
        persona = PEOPLE[i % len(PEOPLE)]
        stimulus = STIMULI[(i + i // len(STIMULI)) % len(STIMULI)]
        person = TinyPerson(persona["name"], gateway=gateway, config=config)
        for key, value in persona.items():
            if key != "name":
                person.define(key, value)
        person.listen(stimulus, source="Interviewer")
        prompt_words = words(" ".join(m["content"] for m in person.prompt_messages()))
        before = len(gateway.ledger.records)
        t = time.perf_counter()
        try:
            person.act(n=1)
            events = [e for e in person.state.episodes if e.direction == "action"]
        except LLMError:
            events = []
            stats["failed"] += 1
        stats["seconds"] += time.perf_counter() - t
        records = gateway.ledger.records[before:]
        stats["valid"] += bool(records) and not any(":repair" in r.purpose or ":resample" in r.purpose for r in records) and bool(events)
        spoken = [e for e in events if e.type in ("TALK", "THINK") and e.content]
        stats["copy8"] += any(copies(e.content, prompt_words, 8) for e in spoken)
        stats["copy5"] += any(copies(e.content, prompt_words, 5) for e in spoken)
        stats["answers"] += any(
            e.type == "TALK" and topic_words(e.content) & topic_words(stimulus) and not copies(e.content, prompt_words, 8)
            for e in spoken
        )
        if len(stats["samples"]) < 6:
            said = " / ".join(f"{e.type}: {e.content}" for e in spoken) or "(no TALK or THINK)"
            stats["samples"].append(f"{persona['name']} <- {stimulus!r}: {said}")
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--threads", type=int, default=0, help="[local] n_threads (0: the configured value)")
    parser.add_argument("--busy", type=int, default=0, help="spinning processes to run meanwhile")
    parser.add_argument("--model-path", default="", help="[local] model_path: another GGUF file (default: the bundled SmolLM2)")
    parser.add_argument("--wait-policy", choices=["PASSIVE", "ACTIVE"], default="PASSIVE", help="the server's OMP_WAIT_POLICY")
    args = parser.parse_args()
    os.environ["OMP_WAIT_POLICY"] = args.wait_policy  # the server inherits it (troupe only fills it in when unset)
    spinners = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(args.busy)]
    for spinner in spinners:
        spinner.start()
    load_before = os.getloadavg()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            overrides: dict[str, Any] = {
                "local.port": free_port(), "cache.enabled": "false", "simulation.transcript": "false",
                "datasets.root": tmp, "llm.timeout_s": 3600,
            }
            if args.threads:
                overrides["local.n_threads"] = args.threads
            if args.model_path:
                overrides["local.model_path"] = args.model_path
            config = load_config(overrides, cwd=Path(tmp), environ={})
            started = time.perf_counter()
            ensure_server(config.local)
            start_s = time.perf_counter() - started
            gateway = LLMGateway(config)
            try:
                prompt_tps, decode_tps = speeds(config)
                stats = turns(config, gateway, args.turns)
            finally:
                stop_server(config.local)
    finally:
        for spinner in spinners:
            spinner.terminate()
    load_after = os.getloadavg()

    n = stats["turns"]
    share = lambda k: f"{stats[k]}/{n} ({stats[k] / max(n, 1):.0%})"  # noqa: E731
    model = Path(args.model_path).name if args.model_path else "SmolLM2-135M-Instruct Q4_1"
    title = f"Embedded model ({model}, {config.local.n_threads} threads, OMP_WAIT_POLICY={args.wait_policy}, {args.busy} busy processes)"
    table = Table(title=title, show_header=False)
    table.add_row("load average before / after (1, 5, 15 min)", f"{' '.join(f'{x:.2f}' for x in load_before)} / {' '.join(f'{x:.2f}' for x in load_after)}")
    table.add_row("server start to first answer", f"{start_s:.2f} s")
    table.add_row("prompt processing", f"{prompt_tps:.0f} tokens/s")
    table.add_row("decode", f"{decode_tps:.1f} tokens/s")
    if n:
        table.add_row("agent turns", str(n))
        table.add_row("mean seconds per turn", f"{stats['seconds'] / n:.1f}")
        table.add_row("valid JSON on the first reply", share("valid"))
        table.add_row("turns that failed (no usable reply)", share("failed"))
        table.add_row("copy >= 8 words of the prompt", share("copy8"))
        table.add_row("copy >= 5 words of the prompt", share("copy5"))
        table.add_row("TALK on the stimulus's topic", share("answers"))
    console = Console()
    console.print(table)
    for sample in stats["samples"]:
        console.print(f"  {sample}", soft_wrap=True, markup=False)


if __name__ == "__main__":
    main()
