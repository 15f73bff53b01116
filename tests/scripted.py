"""Scripted LLM replies for simulation tests, served by the fake OpenAI server.

``Script`` is a FakeOpenAI responder. For an agent's turn it finds the acting agent from the
system prompt ("You are <name>, ...") and returns that agent's next scripted turn (per agent and
per call number, repair requests included), as JSON matching the AgentTurn schema. Requests for
the Consolidation schema get scripted facts, requests for the PreconditionCheck schema get
scripted ``holds`` answers. Everything still goes through the real gateway and the real client.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from typing import Any, Callable, Literal, Sequence

from tests.fake_openai import FakeOpenAI

Action = dict[str, str]
Turn = list[Action] | dict[str, Any]
AgentScript = Sequence[Turn] | Callable[[int], Turn]
Kind = Literal["turn", "consolidation", "precondition", "other"]

_NAME = re.compile(r"^You are (?P<name>.+?), a person in a simulation\.")
REPAIR_PREFIX = "Your previous reply was not valid"


def talk(content: str, target: str = "") -> Action:
    return {"type": "TALK", "content": content, "target": target}


def think(content: str) -> Action:
    return {"type": "THINK", "content": content, "target": ""}


def reach_out(target: str, content: str = "") -> Action:
    return {"type": "REACH_OUT", "content": content, "target": target}


def done() -> Action:
    return {"type": "DONE", "content": "", "target": ""}


def cognitive(goals: str = "", context: str = "", attention: str = "", emotions: str = "Calm.") -> dict[str, str]:
    return {"goals": goals, "context": context, "attention": attention, "emotions": emotions}


def turn(*actions: Action, **state: str) -> dict[str, Any]:
    """A whole AgentTurn reply: these actions and a cognitive state (keywords of :func:`cognitive`)."""
    return {"actions": list(actions), "cognitive_state": cognitive(**state)}


# ----- reading requests -----


def schema_of(body: dict[str, Any]) -> dict[str, Any]:
    response_format = body.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        return response_format["json_schema"]["schema"]
    return response_format.get("schema") or {}


def kind_of(body: dict[str, Any]) -> Kind:
    properties = schema_of(body).get("properties", {})
    if "actions" in properties:
        return "turn"
    if "facts" in properties:
        return "consolidation"
    if "holds" in properties:
        return "precondition"
    return "other"


def agent_of(body: dict[str, Any]) -> str:
    """The acting agent's name, from the system prompt ("" when there is none)."""
    for message in body["messages"]:
        if message.get("role") == "system":
            match = _NAME.match(message.get("content") or "")
            return match["name"] if match else ""
    return ""


def is_repair(body: dict[str, Any]) -> bool:
    last = body["messages"][-1]
    return last.get("role") == "user" and str(last.get("content", "")).startswith(REPAIR_PREFIX)


def user_text(body: dict[str, Any]) -> str:
    """The first user message: the turn prompt (repairs append further messages after it)."""
    return next(m["content"] for m in body["messages"] if m.get("role") == "user")


def turn_requests(fake: FakeOpenAI, name: str, *, repairs: bool = False) -> list[dict[str, Any]]:
    """The turn requests the server received for agent ``name``, in arrival order."""
    return [
        body
        for body in fake.requests
        if kind_of(body) == "turn" and agent_of(body) == name and (repairs or not is_repair(body))
    ]


def turn_prompts(fake: FakeOpenAI, name: str) -> list[str]:
    """The user prompt of each of ``name``'s turns the server saw, in order."""
    return [user_text(body) for body in turn_requests(fake, name)]


def requests_of_kind(fake: FakeOpenAI, kind: Kind) -> list[dict[str, Any]]:
    return [body for body in fake.requests if kind_of(body) == kind]


# ----- the responder -----


class Script:
    """A thread-safe responder with scripted turns per agent.

    ``turns[name]`` is a list (entry n answers that agent's n-th request) or a function of n. An
    entry is a list of actions (the cognitive state is then :func:`cognitive`'s default) or a whole
    reply dict. Past the end of a list, or for an agent without a script, the reply is ``[DONE]``.
    ``facts`` are the consolidation replies in order, ``holds`` the precondition answers in order
    (the last one repeats when they run out).
    """

    def __init__(
        self,
        turns: dict[str, AgentScript] | None = None,
        *,
        facts: Sequence[Sequence[str]] = (("You had a conversation.",),),
        holds: Sequence[bool] = (True,),
    ) -> None:
        self.turns = dict(turns or {})
        self.facts = [list(f) for f in facts]
        self.holds = list(holds)
        self.calls: Counter[str] = Counter()
        self.kinds: Counter[str] = Counter()
        self._lock = threading.Lock()

    def install(self, fake: FakeOpenAI) -> "Script":
        fake.responder = self
        return self

    def __call__(self, body: dict[str, Any]) -> dict[str, Any] | None:
        kind = kind_of(body)
        with self._lock:
            number = self.kinds[kind]
            self.kinds[kind] += 1
            if kind == "turn":
                name = agent_of(body)
                number = self.calls[name]
                self.calls[name] += 1
        if kind == "turn":
            return self._turn(agent_of(body), number)
        if kind == "consolidation":
            return {"facts": self.facts[min(number, len(self.facts) - 1)]}
        if kind == "precondition":
            holds = self.holds[min(number, len(self.holds) - 1)]
            return {"reasoning": f"check {number + 1}", "holds": holds}
        return None

    def _turn(self, name: str, number: int) -> dict[str, Any]:
        script = self.turns.get(name, ())
        entry: Turn
        if callable(script):
            entry = script(number)
        elif number < len(script):
            entry = script[number]
        else:
            entry = [done()]
        if isinstance(entry, dict):
            return entry
        return {"actions": list(entry), "cognitive_state": cognitive()}


class Extracting(Script):
    """Scripted turns ("<name>, turn <n>", then DONE) for agents, and extraction replies from
    ``values(name)`` (a key it lacks is answered "<key> of <name>"; None leaves the request to Script)."""

    def __init__(self, agents: Sequence[str], values: Callable[[str], dict[str, Any] | None]) -> None:
        super().__init__({name: (lambda n, name=name: [talk(f"{name}, turn {n + 1}"), done()]) for name in agents})
        self.values = values

    def __call__(self, body: dict[str, Any]) -> dict[str, Any] | None:
        if kind_of(body) == "other":
            subject = re.search(r"Extract it for (\w+)\.", user_text(body))
            values = self.values(subject[1]) if subject else None
            if subject and values is not None:
                return {key: values.get(key, f"{key} of {subject[1]}") for key in schema_of(body)["properties"]}
        return super().__call__(body)


# ----- reading agents -----


def heard(agent: Any) -> list[tuple[int, str, str]]:
    """(step, source, content) of every CONVERSATION stimulus the agent received, in order."""
    return [
        (e.step, e.source, e.content)
        for e in agent.state.episodes
        if e.direction == "stimulus" and e.type == "CONVERSATION"
    ]


def stimuli(agent: Any, type_: str) -> list[tuple[int, str, str]]:
    """(step, source, content) of the agent's stimuli of one type, in order."""
    return [(e.step, e.source, e.content) for e in agent.state.episodes if e.direction == "stimulus" and e.type == type_]


def acted(agent: Any) -> list[tuple[str, str, str]]:
    """(type, content, target) of every action the agent took, in order."""
    return [(e.type, e.content, e.target) for e in agent.state.episodes if e.direction == "action"]
