"""TinyPerson: a simulated person with TinyTroupe's API.

An agent is its :class:`AgentState` (plain data) plus three live references that are not state:
the LLM gateway it thinks with, the environment it is in, and the transcript it prints to. Each
turn is one LLM call that returns a bounded, typed action sequence and the agent's new cognitive
state; that state, the people it can reach and what it recalls are rendered into the next prompt.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Iterable, Protocol, Sequence

from .. import prompts
from ..config import Config, SimulationConfig
from ..errors import SpecError
from ..llm import LLMGateway, default_gateway, loop
from ..transcript import Transcript
from . import memory
from .actions import BASE_ACTIONS, MAX_TARGET_CHOICES, ActionReply, turn_schema, turn_token_bound
from .persona import Persona, load_spec_file, save_spec
from .render import persona_outline
from .state import AgentState, Event

if TYPE_CHECKING:
    from ..llm import ChatResult
    from .actions import TurnReply


class Environment(Protocol):
    """What an agent needs from the world it is in."""

    name: str
    step: int
    current_datetime: datetime | None

    def record(self, event: Event) -> None: ...


class Faculty(Protocol):
    """A capability that adds action types (a tool) and handles them.

    A faculty is part of the agent's state by name: register its factory with
    :func:`register_faculty` and an agent restored from JSON (a notebook's saved agent, a pipeline
    step's input) gets it back. Keep what a faculty learns in the agent's state (episodes, facts),
    not in the faculty object, so that it survives too.
    """

    actions: dict[str, str]

    async def handle(self, agent: "TinyPerson", action: Event) -> None: ...


_FACULTIES: dict[str, Callable[[], Faculty]] = {}


def register_faculty(name: str, factory: Callable[[], Faculty]) -> None:
    """Make faculty ``name`` restorable: ``factory()`` builds it for an agent whose state names it."""
    _FACULTIES[name] = factory


def faculty_name(faculty: Faculty) -> str:
    return str(getattr(faculty, "name", "") or type(faculty).__name__)


# Faculties troupe ships, by the module that registers them: a worker process that restores an agent
# with one of them (a pipeline step on a cluster) imports it on demand instead of failing.
_SHIPPED_FACULTIES = {"TinyCalendar": "troupe.tools", "TinyWordProcessor": "troupe.tools"}


def make_faculty(name: str) -> Faculty:
    factory = _FACULTIES.get(name)
    if factory is None and name in _SHIPPED_FACULTIES:
        import importlib

        importlib.import_module(_SHIPPED_FACULTIES[name])
        factory = _FACULTIES.get(name)
    if factory is None:
        known = ", ".join(sorted(_FACULTIES)) or "none"
        raise SpecError(f"faculty {name!r} is not registered (registered: {known}); import the module that calls register_faculty({name!r}, ...)")
    return factory()


_REPEAT_MEMORY = 12  # how many recent actions the repetition guard compares against


class ActionRecord(dict):  # type: ignore[type-arg]
    """An action as TinyTroupe returns it, ``{"action": {"type", "content", "target"}, "cognitive_state": {...}}``,
    that also reads as the recorded :class:`Event` (``record.type``, ``record.call_key``, ``record.event``)."""

    def __init__(self, event: Event, cognitive_state: dict[str, Any]) -> None:
        super().__init__(
            action={"type": event.type, "content": event.content, "target": event.target},
            cognitive_state=dict(cognitive_state),
        )
        self.event = event

    def __getattr__(self, name: str) -> Any:
        event = self.__dict__.get("event")
        if event is None:
            raise AttributeError(name)
        return getattr(event, name)


class TinyPerson:
    """A simulated person. ``TinyPerson("Lisa")`` then ``define``/``listen_and_act`` as in TinyTroupe."""

    def __init__(
        self,
        name: str | None = None,
        *,
        persona: Persona | dict[str, Any] | None = None,
        gateway: "LLMGateway | None" = None,
        config: Config | None = None,
        transcript: Transcript | bool | None = None,
        faculties: Sequence[Faculty] = (),
    ) -> None:
        if persona is None:
            if not name:
                raise ValueError("TinyPerson needs a name or a persona, e.g. TinyPerson('Lisa')")
            persona = Persona(name=name)
        elif isinstance(persona, dict):
            persona = Persona.from_dict(persona)
        self.faculties: list[Faculty] = list(faculties)
        self.state = AgentState(persona=persona, faculties=[faculty_name(f) for f in self.faculties])
        self._gateway = gateway
        self._config = config
        self._config_given = config is not None  # reading settings must not turn "no config" into "this config"
        self.environment: Environment | None = None
        if isinstance(transcript, Transcript):
            self.transcript = transcript
        else:
            self.transcript = Transcript(self.settings.transcript if transcript is None else transcript)

    # ----- identity and configuration -----

    @property
    def name(self) -> str:
        return self.state.persona.name

    @property
    def persona(self) -> Persona:
        return self.state.persona

    @property
    def gateway(self) -> "LLMGateway":
        """The gateway given, else one for the config given, else the process's default gateway."""
        if self._gateway is None:
            self._gateway = LLMGateway(self._config) if self._config_given else default_gateway()
        return self._gateway

    @property
    def config(self) -> Config:
        """The config given, else the gateway's (the default gateway's for a plain ``TinyPerson("Lisa")``)."""
        if self._config is None:
            self._config = self.gateway.config
        return self._config

    @property
    def settings(self) -> SimulationConfig:
        return self.config.simulation

    def __repr__(self) -> str:
        return f"TinyPerson({self.name!r})"

    def _repr_html_(self) -> str:
        """A notebook card: the persona outline, the cognitive state and the latest events."""
        from ..ui import person_html

        return person_html(self)

    @property
    def action_generator(self) -> Any:
        """TinyTroupe's per-agent quality-check switches (troupe.validation.quality.ActionGenerator)."""
        from ..validation.quality import ActionGenerator

        return ActionGenerator(self)

    # ----- persona definition (TinyTroupe's API) -----

    def _set_persona(self, persona: Persona) -> "TinyPerson":
        self.state.persona = persona
        return self

    def define(self, key: str, value: Any, group: str | None = None) -> "TinyPerson":
        """Set a persona field (``define("age", 28)``) or append to a group (``group="routines"``)."""
        return self._set_persona(self.state.persona.defined(key, value, group))

    def define_several(self, group: str, values: Iterable[Any]) -> "TinyPerson":
        return self._set_persona(self.state.persona.defined_several(group, values))

    def include_persona_definitions(self, fragment: dict[str, Any]) -> "TinyPerson":
        """Deep-merge a persona fragment (lists extend, objects merge, scalars replace)."""
        return self._set_persona(self.state.persona.merged(fragment))

    def import_fragment(self, path: str | os.PathLike[str]) -> "TinyPerson":
        """Merge a TinyTroupe ``.fragment.json`` file into this persona."""
        kind, persona = load_spec_file(path)
        if kind != "Fragment":
            raise SpecError(f"{path}: type: expected 'Fragment', got {kind!r}; use TinyPerson.load_specification for whole agents")
        return self._set_persona(self.state.persona.merged(persona, source=str(path)))

    def get(self, key: str, default: Any = None) -> Any:
        """A persona field by (dotted) name, e.g. ``get("occupation.title")``."""
        value: Any = self.state.persona.to_dict()
        for part in key.split("."):
            if not isinstance(value, dict) or part not in value:
                return default
            value = value[part]
        return value

    @classmethod
    def load_specification(
        cls, path: str | os.PathLike[str], *, new_agent_name: str | None = None, **kwargs: Any
    ) -> "TinyPerson":
        """Create an agent from a TinyTroupe ``.agent.json`` file."""
        persona = Persona.from_file(path)
        if new_agent_name:
            persona = persona.defined("name", new_agent_name)
        return cls(persona=persona, **kwargs)

    def save_specification(self, path: str | os.PathLike[str]) -> None:
        save_spec(self.state.persona, path)

    def minibio(self) -> str:
        """A one-paragraph description of the person (no LLM call)."""
        return self.state.persona.minibio_facts()

    # ----- state -----

    def to_json(self) -> dict[str, Any]:
        return self.snapshot().model_dump(mode="json")

    def snapshot(self) -> AgentState:
        """The state, with the faculties the agent has now (a list callers may have appended to)."""
        names = [faculty_name(f) for f in self.faculties]
        if names != self.state.faculties:
            self.state.faculties = names
        return self.state

    @classmethod
    def from_json(cls, data: dict[str, Any], **kwargs: Any) -> "TinyPerson":
        return cls.from_state(AgentState.model_validate(data), **kwargs)

    @classmethod
    def from_state(cls, state: AgentState, **kwargs: Any) -> "TinyPerson":
        """An agent that is ``state`` (taken as is, not copied), with its faculties rebuilt by name."""
        agent = cls(persona=state.persona, **kwargs)
        agent.state = state
        agent.faculties = [make_faculty(name) for name in state.faculties]
        return agent

    def encode_complete_state(self) -> dict[str, Any]:
        """TinyTroupe's name for :meth:`to_json`."""
        return self.to_json()

    def decode_complete_state(self, data: dict[str, Any]) -> "TinyPerson":
        """Replace this agent's state with data (as :meth:`to_json` gives it); TinyTroupe's API."""
        state = AgentState.model_validate(data)
        self.state = state
        current = {faculty_name(f): f for f in self.faculties}
        self.faculties = [current.get(name) or make_faculty(name) for name in state.faculties]
        return self

    # ----- stimuli -----

    def _now(self) -> tuple[int, datetime | None]:
        env = self.environment
        return (env.step, env.current_datetime) if env is not None else (0, None)

    def _remember(self, direction: str, type_: str, content: str, source: str = "", target: str = "", call_key: str = "") -> Event:
        step, when = self._now()
        event = Event(
            step=step, time=when, agent=self.name, direction=direction, type=type_,  # type: ignore[arg-type]
            source=source, target=target, content=content, call_key=call_key,
        )
        self.state.episodes.append(event)
        self.transcript.event(event)
        if self.environment is not None:
            self.environment.record(event)
        return event

    def _stimulus(self, type_: str, content: str, source: "TinyPerson | str | None") -> "TinyPerson":
        name = source.name if isinstance(source, TinyPerson) else (source or "")
        self._remember("stimulus", type_, content, source=name)
        return self

    def listen(self, speech: str, source: "TinyPerson | str | None" = None) -> "TinyPerson":
        return self._stimulus("CONVERSATION", speech, source)

    def see(self, description: str, source: "TinyPerson | str | None" = None) -> "TinyPerson":
        return self._stimulus("VISUAL", description, source)

    def socialize(self, social_description: str, source: "TinyPerson | str | None" = None) -> "TinyPerson":
        return self._stimulus("SOCIAL", social_description, source)

    def think(self, thought: str) -> "TinyPerson":
        return self._stimulus("THOUGHT", thought, self.name)

    def internalize_goal(self, goal: str) -> "TinyPerson":
        self.state.cognitive = self.state.cognitive.model_copy(update={"goals": goal})
        return self._stimulus("INTERNAL_GOAL_FORMULATION", goal, self.name)

    def change_context(self, context: str | Sequence[str]) -> "TinyPerson":
        text = context if isinstance(context, str) else "; ".join(context)
        self.state.cognitive = self.state.cognitive.model_copy(update={"context": text})
        return self._stimulus("CONTEXT", text, "")

    def make_agent_accessible(self, agent: "TinyPerson | str") -> "TinyPerson":
        name = agent.name if isinstance(agent, TinyPerson) else agent
        if name != self.name and name not in self.state.accessible:
            self.state.accessible.append(name)
        return self

    def make_agent_inaccessible(self, agent: "TinyPerson | str") -> "TinyPerson":
        name = agent.name if isinstance(agent, TinyPerson) else agent
        self.state.accessible = [n for n in self.state.accessible if n != name]
        return self

    def make_all_agents_inaccessible(self) -> "TinyPerson":
        self.state.accessible = []
        return self

    def add_mental_faculties(self, faculties: Iterable[Any]) -> "TinyPerson":
        """TinyTroupe's way to give an agent tools; a container with ``.tools`` (TinyToolUse) adds each tool."""
        for faculty in faculties:
            self.faculties.extend(getattr(faculty, "tools", None) or [faculty])
        return self

    # ----- acting -----

    def _action_types(self) -> dict[str, str]:
        types = dict(BASE_ACTIONS)
        for faculty in self.faculties:
            types.update(faculty.actions)
        done = types.pop("DONE")
        types["DONE"] = done  # DONE stays last, as the prompt says
        return types

    def prompt_messages(self, recalled: Sequence[str] = ()) -> list[dict[str, str]]:
        """The messages of the agent's next turn (also handy to inspect or count tokens)."""
        settings = self.settings
        actions = self._action_types()
        _, when = self._now()
        system = prompts.render(
            "agent_system",
            name=self.name,
            persona=persona_outline(self.state.persona.to_dict(), settings.persona_max_items),
            max_actions=settings.max_actions_per_turn,
            actions=actions,
        )
        user = prompts.render(
            "agent_turn",
            name=self.name,
            now=when.strftime("%A %d %B %Y, %H:%M") if when else "",
            cognitive=self.state.cognitive,
            accessible=self.state.accessible,
            recalled=list(recalled),
            window=memory.episode_window(self.state, settings.episode_prefix, settings.episode_window),
        )
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def _targets(self) -> tuple[str, ...] | None:
        """Whom an action may name: the people the agent can reach, sees around, knows, or just heard from.

        None (free text) when ``[simulation] constrain_targets`` is off or there are more than
        MAX_TARGET_CHOICES names, to keep the schema small.
        """
        if not self.settings.constrain_targets:
            return None
        known = [r.name for r in self.state.persona.relationships]
        present = [a.name for a in getattr(self.environment, "agents", [])]
        heard = [e.source for e in self.state.episodes[-20:] if e.direction == "stimulus"]
        names = [n for n in dict.fromkeys([*self.state.accessible, *present, *known, *heard]) if n and n != self.name]
        return tuple(names) if len(names) <= MAX_TARGET_CHOICES else None

    def _recall_query(self) -> str:
        recent: list[str] = []
        for event in reversed(self.state.episodes):
            if event.direction == "action":
                break
            recent.append(event.content)
        return " ".join(reversed(recent))

    def _guard(self, actions: Sequence[ActionReply]) -> list[ActionReply]:
        """Cut the sequence at DONE and drop actions the agent already took recently."""
        seen = {
            (e.type, e.content.strip().lower(), e.target)
            for e in [e for e in self.state.episodes if e.direction == "action"][-_REPEAT_MEMORY:]
            if e.type != "DONE"
        }
        kept: list[ActionReply] = []
        for action in actions:
            if action.type == "DONE":
                kept.append(action)
                break
            signature = (action.type, action.content.strip().lower(), action.target)
            if signature in seen:
                continue
            seen.add(signature)
            kept.append(action)
        return kept

    async def adecide(self) -> "ChatResult[TurnReply]":
        """One LLM call: the agent's next actions and cognitive state, not yet applied.

        With ``[simulation] quality_checks`` set, the turn is judged and regenerated when it falls
        short (troupe.validation.quality); off by default, as in TinyTroupe.
        """
        if self.settings.quality_checks:
            from ..validation.quality import adecide_checked

            return await adecide_checked(self, self._adecide)
        return await self._adecide()

    async def _adecide(self, feedback: Sequence[dict[str, str]] = ()) -> "ChatResult[TurnReply]":
        """The turn's call; feedback (messages about a rejected attempt) is appended to the prompt."""
        settings = self.settings
        recalled = await memory.recall(self.state, self.gateway, self._recall_query(), settings.recall_top_k)
        schema = turn_schema(tuple(self._action_types()), settings.max_actions_per_turn, self._targets())
        max_tokens = max(self.gateway.config.llm.max_tokens, turn_token_bound(settings.max_actions_per_turn))
        return await self.gateway.astructured(
            [*self.prompt_messages(recalled), *feedback], schema, purpose=f"act:{self.name}", max_tokens=max_tokens
        )

    async def aapply(self, reply: "ChatResult[TurnReply]") -> list[Event]:
        """Apply a decided turn: record the actions, run faculties, consolidate memory when due.

        Deciding and applying are separate so a world can let agents decide concurrently and
        still apply their turns in a fixed order, keeping the event log deterministic.
        """
        self.state.cognitive = reply.value.cognitive_state.to_state()
        self.state.turns += 1
        events: list[Event] = []
        for action in self._guard(reply.value.actions):
            content, target = ("", "") if action.type == "DONE" else (action.content, action.target)  # DONE carries nothing
            event = self._remember("action", action.type, content, source=self.name, target=target, call_key=reply.key)
            events.append(event)
            if action.type == "REACH_OUT" and action.target and self.environment is None:
                self.make_agent_accessible(action.target)
            for faculty in self.faculties:
                if action.type in faculty.actions:
                    await faculty.handle(self, event)
        if memory.consolidation_due(self.state, self.settings.consolidate_every):
            step, _ = self._now()
            await memory.consolidate(self.state, self.gateway, step)
        return events

    async def _aturn(self) -> list[Event]:
        return await self.aapply(await self.adecide())

    async def aact(self, until_done: bool = True, n: int | None = None) -> list[Event]:
        """Act for n turns, or (until_done) until a turn ends with DONE, at most max_turns_until_done."""
        return [record.event for record in await self._aact_records(until_done, n)]

    async def _aact_records(self, until_done: bool, n: int | None) -> list[ActionRecord]:
        """:meth:`aact`'s actions, each with the cognitive state its own turn left (as TinyTroupe's)."""
        turns = n if n is not None else (self.settings.max_turns_until_done if until_done else 1)
        records: list[ActionRecord] = []
        for _ in range(max(1, turns)):
            produced = await self._aturn()
            records.extend(self.action_records(produced))
            if n is None and (not produced or produced[-1].type == "DONE"):
                break
        return records

    def act(
        self, until_done: bool = True, n: int | None = None, return_actions: bool = False, max_content_length: int | None = None
    ) -> "list[ActionRecord] | None":
        """Act (see :meth:`aact`); with return_actions, the actions as TinyTroupe returns them.

        max_content_length is accepted as TinyTroupe's display setting; troupe's transcript wraps
        long content instead of cutting it, so it changes nothing here.
        """
        records = loop.run_sync(self._aact_records(until_done, n))
        return records if return_actions else None

    def action_records(self, events: Iterable[Event]) -> list[ActionRecord]:
        """Events as TinyTroupe returns actions, each with the agent's cognitive state as it is now."""
        cognitive = self.state.cognitive.model_dump()
        return [ActionRecord(event, cognitive) for event in events]

    def listen_and_act(self, speech: str, return_actions: bool = False, **kwargs: Any) -> "list[ActionRecord] | None":
        return self.listen(speech, kwargs.pop("source", None)).act(return_actions=return_actions, **kwargs)

    def see_and_act(self, description: str, return_actions: bool = False, **kwargs: Any) -> "list[ActionRecord] | None":
        return self.see(description, kwargs.pop("source", None)).act(return_actions=return_actions, **kwargs)

    def think_and_act(self, thought: str, return_actions: bool = False, **kwargs: Any) -> "list[ActionRecord] | None":
        return self.think(thought).act(return_actions=return_actions, **kwargs)

    def pp_current_interactions(self, last_n: int = 20) -> None:
        """Print the agent's latest events, as TinyTroupe's pp_current_interactions does."""
        for event in self.state.episodes[-last_n:]:
            self.transcript.event(event)

    def pretty_current_interactions(self, last_n: int = 20) -> str:
        """The agent's latest events as transcript text."""
        from ..transcript import event_lines

        lines: list[str] = []
        for event in self.state.episodes[-last_n:]:
            header, quoted = event_lines(event)
            lines.extend([header, quoted] if quoted else [header])
        return "\n".join(lines)
