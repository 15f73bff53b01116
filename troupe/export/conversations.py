"""Conversations for training, derived from a run's ``events``.

Two views of the same log:

- **per agent**: one conversation per agent per world, as that agent lived it. The system message
  is its persona; what it perceived (speech, sights, thoughts given to it, context) is the user,
  what it did (speech, thoughts, reaching out) is the assistant. This is the shape a chat model is
  fine-tuned on to play a persona.
- **per conversation**: one conversation per world, as an observer reads it. The system message
  names the place and the people with their personas; the agents' speech is the assistant (each
  line prefixed with its speaker), and whatever came from outside the agents (a broadcast, an
  interviewer, a change of context) is the user. This is the shape a model is trained on to write
  whole dialogues.

In both, consecutive turns of the same role are merged into one message (lines joined by newlines),
so roles alternate strictly; a conversation that opens with the assistant gets the agent's own
cue (``Act now as <name>.``, the line every turn prompt ends with) as its first user message, and
trailing user messages (heard after the agent's last action, so nothing answers them) are dropped.
"""

from __future__ import annotations

import json
from collections import defaultdict
from itertools import groupby
from typing import Any, Iterable, Literal

from pydantic import BaseModel, Field

from ..agent.render import persona_outline
from .options import Per

Role = Literal["system", "user", "assistant"]


class Message(BaseModel):
    role: Role
    content: str = Field(min_length=1)


class Conversation(BaseModel):
    """One training example and where it came from."""

    run_id: str
    world: str
    agent: str | None  # None for a whole-world conversation
    messages: list[Message]
    purpose: str | None = None  # for an LLM call's prompt/completion pair: the call's purpose and key
    call_key: str | None = None


def _speech(event: dict[str, Any]) -> str:
    """An action as the agent's own words: TALK as said, other actions tagged with their type."""
    content = (event["content"] or "").strip()
    target = f" -> {event['target']}" if event["target"] else ""
    if event["type"] == "TALK":
        return f"(to {event['target']}) {content}" if event["target"] and content else content
    if not content and not target:
        return ""  # DONE, and any other bare action: nothing to learn from
    return f"[{event['type']}{target}] {content}".rstrip()


def _perceived(event: dict[str, Any], viewer: str | None) -> str:
    """A stimulus as the receiver (or an observer, viewer None) perceived it."""
    content = (event["content"] or "").strip()
    if not content:
        return ""
    source = event["source"]
    if event["type"] == "CONVERSATION":
        return f"{source}: {content}" if source else content
    if viewer is not None and source == viewer:
        return f"[{event['type']}] {content}"  # the agent's own thought or goal, given to it
    return f"[{event['type']}{' from ' + source if source else ''}] {content}"


def _merge(turns: Iterable[tuple[Role, str]], cue: str) -> list[Message]:
    """Merge same-role runs, open with a user turn, end on the assistant's last turn."""
    merged = [(role, "\n".join(text for _, text in group)) for role, group in groupby((t for t in turns if t[1]), key=lambda t: t[0])]
    while merged and merged[-1][0] != "assistant":
        merged.pop()
    if merged and merged[0][0] == "assistant":
        merged.insert(0, ("user", cue))
    return [Message(role=role, content=text) for role, text in merged]


def _outline(persona: dict[str, Any] | None) -> str:
    """The persona as the agent's own prompt shows it (one ``key: value`` line per fact)."""
    return persona_outline(persona) if persona else ""


def _system_for(name: str, persona: dict[str, Any] | None) -> str:
    outline = _outline(persona)
    return f"You are {name}." + (f"\n{outline}" if outline else "")


def agent_conversations(run_id: str, events: list[dict[str, Any]], personas: dict[str, dict[str, Any]]) -> list[Conversation]:
    """One conversation per (world, agent) with at least one assistant turn, sorted by world and agent."""
    views: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        if event["agent"]:  # a world-level event belongs to nobody's view
            views[(event["world"], event["agent"])].append(event)
    result = []
    for (world, agent), own in sorted(views.items()):
        turns = [
            ("assistant", _speech(e)) if e["direction"] == "action" else ("user", _perceived(e, agent))
            for e in sorted(own, key=lambda e: e["seq"])
        ]
        messages = _merge(turns, f"Act now as {agent}.")
        if messages:
            system = Message(role="system", content=_system_for(agent, personas.get(agent)))
            result.append(Conversation(run_id=run_id, world=world, agent=agent, messages=[system, *messages]))
    return result


def world_conversations(run_id: str, events: list[dict[str, Any]], personas: dict[str, dict[str, Any]]) -> list[Conversation]:
    """One conversation per world: the agents' speech as the assistant, outside voices as the user."""
    result = []
    for world, log in groupby(sorted(events, key=lambda e: (e["world"], e["seq"])), key=lambda e: e["world"]):
        log = list(log)
        agents = list(dict.fromkeys(e["agent"] for e in log if e["agent"]))
        seen: set[tuple[Any, ...]] = set()
        turns: list[tuple[Role, str]] = []
        for event in log:
            if event["direction"] == "action":
                if event["type"] == "TALK" and (event["content"] or "").strip():
                    turns.append(("assistant", f"{event['agent']}: {_speech(event)}"))
            elif event["source"] not in agents:
                key = (event["step"], event["type"], event["source"], event["content"])
                if key not in seen:  # a broadcast reaches every agent: tell it once
                    seen.add(key)
                    turns.append(("user", _perceived(event, None)))
        messages = _merge(turns, "Begin.")
        if messages:
            people = "\n\n".join(f"{a}:\n{_outline(personas.get(a))}".rstrip(":\n") for a in agents)
            system = Message(role="system", content=f"A conversation in {world} between {', '.join(agents)}.\n\n{people}")
            result.append(Conversation(run_id=run_id, world=world, agent=None, messages=[system, *messages]))
    return result


def conversations(run_id: str, events: list[dict[str, Any]], persona_specs: Iterable[str], per: Per) -> list[Conversation]:
    """The run's conversations; persona_specs are the personas dataset's spec_json texts."""
    personas = {}
    for text in persona_specs:
        spec = json.loads(text) if text else {}
        spec = spec.get("persona", spec)  # a TinyTroupe .agent.json nests the persona
        if spec.get("name"):
            personas[str(spec["name"])] = spec
    build = agent_conversations if per is Per.agent else world_conversations
    return build(run_id, events, personas)
