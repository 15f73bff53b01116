"""Prompt tokens per agent action, counted with the embedded model's tokenizer.

    python -m bench.prompt_tokens

For each example persona (Lisa, Oscar, Marcos, Lila) prints the tokens of one turn's prompt
(system + user message) on a first turn (one stimulus) and on a turn with a full episode window,
with persona lists cut to 3 items (persona_max_items = 3) and with the whole persona shown
(persona_max_items = 0, the default, as TinyTroupe shows it).
Needs the 'local' extra (llama-cpp-python) for the tokenizer; no model is run.
"""

from __future__ import annotations

from llama_cpp import Llama
from rich.console import Console
from rich.table import Table

from troupe.config import load_config
from troupe.examples.builders import BUILDERS
from troupe.local_model import weights_path


def main() -> None:
    base = load_config({"simulation.transcript": "false"})
    tokenizer = Llama(model_path=str(weights_path(base.local)), vocab_only=True, verbose=False)

    def tokens(messages: list[dict[str, str]]) -> int:
        return sum(len(tokenizer.tokenize(m["content"].encode(), add_bos=False)) for m in messages)

    table = Table(title="Prompt tokens per agent action (SmolLM2 tokenizer)")
    for column in ("persona", "max_items", "first turn", f"turn with {base.simulation.episode_window}+ events", "chars / token"):
        table.add_column(column, justify="right")
    for max_items in (3, 0):
        config = base.with_overrides({"simulation.persona_max_items": max_items})
        for name, build in BUILDERS.items():
            agent = build(config=config, transcript=False)
            agent.make_agent_accessible("Oscar" if name != "oscar" else "Lisa Carter")
            agent.listen("Hi! What do you do for work, and what do you enjoy most about it?", source="Interviewer")
            first = agent.prompt_messages()
            for i in range(config.simulation.episode_window + config.simulation.episode_prefix):
                agent.listen(f"Message {i}: what do you think about remote work and its effect on teams?", source="Interviewer")
            full = agent.prompt_messages()
            chars = sum(len(m["content"]) for m in first)
            table.add_row(name, str(max_items or "all"), str(tokens(first)), str(tokens(full)), f"{chars / tokens(first):.2f}")
    Console().print(table)


if __name__ == "__main__":
    main()
