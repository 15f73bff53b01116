"""TinyWorld: runs agents step by step, routes what they say, keeps a clock.

A step is: fire the interventions whose preconditions hold, let every agent act, deliver what they
said, advance the clock. Two step modes:

* ``parallel`` (the default): simultaneous moves. Every agent decides on the same snapshot of the
  world (their LLM calls run concurrently), their turns are applied in the order the agents were
  added, and what they said is delivered at the end of the step, so nobody hears a message in the
  step it was spoken.
* ``sequential``: agents act one after another in a random order drawn from (seed, step); each
  hears what the ones before it said in the same step.

``run`` also takes TinyTroupe's keywords: ``parallelize=True/False`` picks the mode for that run
(None: the world's ``step_mode``), and ``randomize_agents_order=False`` makes sequential agents act
in the order they were added. With ``return_actions=True`` it returns what TinyTroupe returns: per
step, ``{agent name: [action dicts]}`` (``a["action"]["type"]``), each action also readable as the
recorded :class:`Event` (``a.type``, ``a.event``).

Either way, a step is a function of the world's state and the LLM's replies: with the call cache
warm, a rerun reproduces the same state, which is what lets a pipeline cache a world step.

A world's events are stored once: :class:`WorldState` (the data form, what ``to_json`` gives and a
pipeline task takes) keeps the event log, and each agent's state keeps only the episodes it had
before joining; a restored world gives every agent its episodic view back from the log.

With ``failures`` set to a list (the pipeline does this for ``[pipeline] on_item_error = skip``),
an agent whose turn still fails after the gateway's retries sits the step out and the failure is
appended there; otherwise the error propagates, as a notebook user expects.
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Literal

from pydantic import BaseModel, Field

from ..agent.person import ActionRecord, TinyPerson
from ..agent.state import AgentState, Event, ItemFailure
from ..config import Config, load_config
from ..llm import LLMGateway, default_gateway, loop
from ..llm.errors import LLMRefusal, LLMStructuredOutputError, LLMTruncated, LLMUnavailable
from ..transcript import Transcript
from .intervention import Intervention


StepMode = Literal["parallel", "sequential"]

# What one step's agents did, as TinyTroupe's run(return_actions=True) gives it per step.
StepActions = dict[str, list[ActionRecord]]

# Errors that belong to one item (one agent's turn, one extraction): they outlived the gateway's
# retries for this request only. Auth errors and bad requests concern every item and fail the run.
ITEM_ERRORS = (LLMUnavailable, LLMStructuredOutputError, LLMTruncated, LLMRefusal)


class WorldState(BaseModel):
    """A world as plain data: enough to restore it exactly, mid-run."""

    kind: str = "TinyWorld"
    name: str
    step: int = 0
    current_datetime: datetime | None = None
    step_mode: StepMode = "parallel"
    seed: int = 42
    broadcast_if_no_target: bool = True
    agents: list[AgentState] = Field(default_factory=list)
    events: list[Event] = Field(default_factory=list)
    fired_interventions: list[str] = Field(default_factory=list)
    relations: list[tuple[str, str, str]] = Field(default_factory=list)


class TinyWorld:
    """An environment of agents. ``TinyWorld("Chat Room", [lisa, oscar]).run(4)``."""

    kind = "TinyWorld"

    def __init__(
        self,
        name: str = "A TinyWorld",
        agents: Iterable[TinyPerson] = (),
        initial_datetime: datetime | None = None,
        broadcast_if_no_target: bool = True,
        *,
        step_mode: StepMode | None = None,
        seed: int | None = None,
        gateway: "LLMGateway | None" = None,
        config: Config | None = None,
        transcript: Transcript | bool | None = None,
        interventions: Iterable[Intervention] = (),
    ) -> None:
        self._config_given = config is not None
        self.config = config or (gateway.config if gateway is not None else load_config())
        settings = self.config.simulation
        self.state = WorldState(
            kind=self.kind,
            name=name,
            current_datetime=initial_datetime,
            step_mode=step_mode or settings.step_mode,
            seed=settings.seed if seed is None else seed,
            broadcast_if_no_target=broadcast_if_no_target,
        )
        self._gateway = gateway
        if isinstance(transcript, Transcript):
            self.transcript = transcript
        else:
            self.transcript = Transcript(settings.transcript if transcript is None else transcript)
        self.agents: list[TinyPerson] = []
        self.interventions: list[Intervention] = list(interventions)  # TinyTroupe's constructor argument
        self.failures: list[ItemFailure] | None = None
        self.add_agents(agents)

    @property
    def gateway(self) -> "LLMGateway":
        """The gateway given, else one for the config given, else the process's default (for interventions)."""
        if self._gateway is None:
            self._gateway = LLMGateway(self.config) if self._config_given else default_gateway()
        return self._gateway

    # ----- the Environment protocol agents use -----

    @property
    def name(self) -> str:
        return self.state.name

    @property
    def step(self) -> int:
        return self.state.step

    @property
    def current_datetime(self) -> datetime | None:
        return self.state.current_datetime

    def record(self, event: Event) -> None:
        self.state.events.append(event)

    # ----- membership -----

    def add_agent(self, agent: TinyPerson) -> "TinyWorld":
        if any(a.name == agent.name for a in self.agents):
            raise ValueError(f"{self.name}: an agent named {agent.name!r} is already here; give each agent a unique name")
        if agent.environment is not None and agent.environment is not self:
            raise ValueError(f"{agent.name} is already in {agent.environment.name}; remove it there first")
        agent.environment = self
        agent.transcript = self.transcript
        if self._gateway is not None and agent._gateway is None:
            agent._gateway = self._gateway
        self.agents.append(agent)
        return self

    def add_agents(self, agents: Iterable[TinyPerson]) -> "TinyWorld":
        for agent in agents:
            self.add_agent(agent)
        return self

    def remove_agent(self, agent: TinyPerson | str) -> "TinyWorld":
        name = agent.name if isinstance(agent, TinyPerson) else agent
        for other in self.agents:
            other.make_agent_inaccessible(name)
            if other.name == name:
                other.environment = None
        self.agents = [a for a in self.agents if a.name != name]
        return self

    def get_agent_by_name(self, name: str) -> TinyPerson | None:
        return next((a for a in self.agents if a.name == name), None)

    def _repr_html_(self) -> str:
        """A notebook card: the agents, the clock and the latest events."""
        from ..ui import world_html

        return world_html(self)

    def make_everyone_accessible(self) -> "TinyWorld":
        for agent in self.agents:
            for other in self.agents:
                agent.make_agent_accessible(other)
        return self

    def add_intervention(self, intervention: Intervention) -> "TinyWorld":
        self.interventions.append(intervention)
        return self

    # ----- broadcasts -----

    def broadcast(self, speech: str, source: TinyPerson | str | None = None) -> "TinyWorld":
        speaker = source.name if isinstance(source, TinyPerson) else source
        for agent in self.agents:
            if agent.name != speaker:
                agent.listen(speech, source)
        return self

    def broadcast_thought(self, thought: str) -> "TinyWorld":
        for agent in self.agents:
            agent.think(thought)
        return self

    def broadcast_internal_goal(self, goal: str) -> "TinyWorld":
        for agent in self.agents:
            agent.internalize_goal(goal)
        return self

    def broadcast_context_change(self, context: str | list[str]) -> "TinyWorld":
        for agent in self.agents:
            agent.change_context(context)
        return self

    # ----- who can reach whom (TinySocialNetwork narrows these) -----

    def can_reach(self, source: TinyPerson, target: TinyPerson) -> bool:
        return source is not target

    def audience(self, source: TinyPerson) -> list[TinyPerson]:
        return [a for a in self.agents if self.can_reach(source, a)]

    def _before_step(self) -> None:
        """Hook run before agents act (the social network refreshes accessibility here)."""

    # ----- running -----

    def run(
        self,
        steps: int,
        timedelta_per_step: timedelta | None = None,
        return_actions: bool = False,
        randomize_agents_order: bool = True,
        parallelize: bool | None = None,
    ) -> list[StepActions] | None:
        """Run steps; with timedelta_per_step the clock advances by that much per step.

        TinyTroupe's signature: ``parallelize`` overrides ``step_mode`` for this run (True:
        parallel, False: sequential, None: the world's), ``randomize_agents_order=False`` keeps
        sequential agents in the order they were added. With return_actions, a list with one
        ``{agent name: [actions]}`` per step.
        """
        actions = loop.run_sync(
            self.arun(steps, timedelta_per_step, randomize_agents_order=randomize_agents_order, parallelize=parallelize)
        )
        return actions if return_actions else None

    async def arun(
        self,
        steps: int,
        timedelta_per_step: timedelta | None = None,
        *,
        randomize_agents_order: bool = True,
        parallelize: bool | None = None,
    ) -> list[StepActions]:
        mode: StepMode | None = None if parallelize is None else ("parallel" if parallelize else "sequential")
        return [
            await self.astep(timedelta_per_step, total=steps, index=i + 1, mode=mode, shuffle=randomize_agents_order)
            for i in range(steps)
        ]

    # TinyTroupe's calendar shorthands (a month is 4 weeks and a year 365 days, as there).

    def run_minutes(self, minutes: int, randomize_agents_order: bool = True, parallelize: bool | None = None) -> None:
        self.run(minutes, timedelta(minutes=1), randomize_agents_order=randomize_agents_order, parallelize=parallelize)

    def run_hours(self, hours: int, randomize_agents_order: bool = True, parallelize: bool | None = None) -> None:
        self.run(hours, timedelta(hours=1), randomize_agents_order=randomize_agents_order, parallelize=parallelize)

    def run_days(self, days: int, randomize_agents_order: bool = True, parallelize: bool | None = None) -> None:
        self.run(days, timedelta(days=1), randomize_agents_order=randomize_agents_order, parallelize=parallelize)

    def run_weeks(self, weeks: int, randomize_agents_order: bool = True, parallelize: bool | None = None) -> None:
        self.run(weeks, timedelta(weeks=1), randomize_agents_order=randomize_agents_order, parallelize=parallelize)

    def run_months(self, months: int, randomize_agents_order: bool = True, parallelize: bool | None = None) -> None:
        self.run(months, timedelta(weeks=4), randomize_agents_order=randomize_agents_order, parallelize=parallelize)

    def run_years(self, years: int, randomize_agents_order: bool = True, parallelize: bool | None = None) -> None:
        self.run(years, timedelta(days=365), randomize_agents_order=randomize_agents_order, parallelize=parallelize)

    def skip_minutes(self, minutes: int) -> "TinyWorld":
        return self.skip(minutes, timedelta(minutes=1))

    def skip_hours(self, hours: int) -> "TinyWorld":
        return self.skip(hours, timedelta(hours=1))

    def skip_days(self, days: int) -> "TinyWorld":
        return self.skip(days, timedelta(days=1))

    def skip_weeks(self, weeks: int) -> "TinyWorld":
        return self.skip(weeks, timedelta(weeks=1))

    def skip_months(self, months: int) -> "TinyWorld":
        return self.skip(months, timedelta(weeks=4))

    def skip_years(self, years: int) -> "TinyWorld":
        return self.skip(years, timedelta(days=365))

    def skip(self, steps: int, timedelta_per_step: timedelta | None = None) -> "TinyWorld":
        """Advance the step counter and clock without anyone acting."""
        for _ in range(steps):
            self.state.step += 1
            self._tick(timedelta_per_step)
        return self

    def _tick(self, delta: timedelta | None) -> None:
        if delta is None:
            return
        base = self.state.current_datetime or datetime(2025, 1, 1, 9, 0)
        self.state.current_datetime = base + delta

    def _order(self, mode: StepMode, shuffle: bool) -> list[TinyPerson]:
        order = list(self.agents)
        if mode == "sequential" and shuffle:
            random.Random(f"{self.state.seed}:{self.state.step}").shuffle(order)
        return order

    async def astep(
        self,
        timedelta_per_step: timedelta | None = None,
        *,
        total: int = 1,
        index: int = 1,
        prelude: Callable[["TinyWorld"], None] | None = None,
        mode: StepMode | None = None,
        shuffle: bool = True,
    ) -> StepActions:
        """One step: the prelude (a scenario's stimuli for this step), interventions, agents' turns, deliveries, clock.

        ``mode`` overrides the world's ``step_mode`` for this step; ``shuffle=False`` keeps a
        sequential step in the order agents were added. Returns every agent's actions, by name.
        """
        self.state.step += 1
        self.transcript.banner(self.name, index, total)
        if prelude is not None:
            prelude(self)
        await self._interventions()
        self._before_step()
        pending: list[tuple[TinyPerson, Event]] = []
        parallel = (mode or self.state.step_mode) == "parallel"
        active = self._order("parallel" if parallel else "sequential", shuffle)
        actions: StepActions = {agent.name: [] for agent in active}
        for _ in range(max(1, self.config.simulation.max_turns_until_done)):
            if not active:
                break
            if parallel:
                replies = await asyncio.gather(*(self._decide(agent) for agent in active))
                turns = [(agent, await self._apply(agent, reply, actions)) for agent, reply in zip(active, replies) if reply is not None]
                pending.extend((agent, event) for agent, events in turns for event in events)
            else:
                turns = []
                for agent in active:
                    reply = await self._decide(agent)
                    if reply is None:
                        continue
                    events = await self._apply(agent, reply, actions)
                    turns.append((agent, events))
                    for event in events:
                        self._deliver(agent, event)
            active = [agent for agent, events in turns if events and events[-1].type != "DONE"]
        for agent, event in pending:
            self._deliver(agent, event)
        self._tick(timedelta_per_step)
        return actions

    async def _apply(self, agent: TinyPerson, reply: Any, actions: StepActions) -> list[Event]:
        """Apply a decided turn and add its actions, with the cognitive state it left, to the step's."""
        events = await agent.aapply(reply)
        actions[agent.name].extend(agent.action_records(events))
        return events

    async def _decide(self, agent: TinyPerson) -> Any:
        """The agent's decided turn, or None when it failed alone (see ``failures``)."""
        if self.failures is None:
            return await agent.adecide()
        try:
            return await agent.adecide()
        except ITEM_ERRORS as exc:
            self.failures.append(
                ItemFailure.from_error(exc, "simulate", self.config.llm.max_attempts, world=self.name, agent=agent.name, step=self.step)
            )
            return None

    def _deliver(self, source: TinyPerson, event: Event) -> None:
        """Route an action: TALK to its target (or everyone), REACH_OUT connects two agents."""
        if event.type == "TALK":
            target = self.get_agent_by_name(event.target) if event.target else None
            if target is not None:
                if self.can_reach(source, target):
                    target.listen(event.content, source)
                else:
                    source.socialize(f"{event.target} cannot hear you: you are not connected.", self.name)
            elif not event.target or self.state.broadcast_if_no_target:
                for listener in self.audience(source):
                    listener.listen(event.content, source)
            else:
                source.socialize(f"{event.target} is not here: nobody heard you.", self.name)
        elif event.type == "REACH_OUT":
            if not event.target:
                source.socialize("To reach out, name the person you want to reach.", self.name)
                return
            target = self.get_agent_by_name(event.target)
            if target is None or not self.can_reach(source, target):
                source.socialize(f"{event.target} could not be reached.", self.name)
                return
            if target.name in source.state.accessible and source.name in target.state.accessible:
                return  # already in touch: nothing changes, nobody needs telling
            source.make_agent_accessible(target)
            target.make_agent_accessible(source)
            source.socialize(f"{target.name} was reached and is now available to talk.", self.name)
            target.socialize(f"{source.name} reached out to you and is now available to talk.", self.name)

    async def _interventions(self) -> None:
        for intervention in self.interventions:
            if intervention.name in self.state.fired_interventions and not intervention.repeat:
                continue
            if await intervention.aholds(self):
                await asyncio.to_thread(intervention.apply, self)
                if intervention.name not in self.state.fired_interventions:
                    self.state.fired_interventions.append(intervention.name)
                self.transcript.note(f"Intervention {intervention.name!r} fired at step {self.step}.")

    # ----- state -----

    def snapshot(self) -> WorldState:
        """The world as data: the event log once, each agent with only its episodes from before it joined.

        Shallow: the models share the live world's lists and events (which are immutable), so
        taking a snapshot costs a pass over the log, not a copy of it.
        """
        logged = {id(event) for event in self.state.events}
        agents = []
        for agent in self.agents:
            state = agent.snapshot()
            own = [e for e in state.episodes if id(e) not in logged]
            agents.append(state if len(own) == len(state.episodes) else state.model_copy(update={"episodes": own}))
        return self.state.model_copy(update={"agents": agents})

    def to_json(self) -> dict[str, Any]:
        return self.snapshot().model_dump(mode="json")

    def encode_complete_state(self) -> dict[str, Any]:
        """TinyTroupe's name for :meth:`to_json`."""
        return self.to_json()

    @classmethod
    def from_json(
        cls,
        data: dict[str, Any],
        *,
        gateway: "LLMGateway | None" = None,
        config: Config | None = None,
        transcript: Transcript | bool | None = None,
    ) -> "TinyWorld":
        return cls.from_state(WorldState.model_validate(data), gateway=gateway, config=config, transcript=transcript)

    @classmethod
    def from_state(
        cls,
        state: WorldState,
        *,
        gateway: "LLMGateway | None" = None,
        config: Config | None = None,
        transcript: Transcript | bool | None = None,
    ) -> "TinyWorld":
        """A live world from its data form (taken over, not copied); agents get their episodes from the log."""
        kind = next((k for k in (cls, *_subclasses(TinyWorld)) if k.kind == state.kind), None)
        if kind is None:
            raise ValueError(f"world kind {state.kind!r} is unknown; import the module that defines it first")
        world = kind(state.name, gateway=gateway, config=config, transcript=transcript)
        by_agent: dict[str, list[Event]] = defaultdict(list)
        for event in state.events:
            by_agent[event.agent].append(event)
        agents = [
            TinyPerson.from_state(
                a.model_copy(update={"episodes": [*a.episodes, *by_agent.get(a.name, ())]}), gateway=gateway, config=world.config
            )
            for a in state.agents
        ]
        world.state = state.model_copy(update={"agents": [], "events": list(state.events)})
        world.agents = []
        world.add_agents(agents)
        return world


def _subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found.extend([sub, *_subclasses(sub)])
    return found
