"""TinyTroupe's ``ResultsReducer``: rules per event type turn an agent's events into table rows.

A rule is registered for a trigger (an event type such as ``TALK`` or ``CONVERSATION``) and is
called with TinyTroupe's keyword arguments: ``focus_agent``, ``source_agent``, ``target_agent``,
``kind`` ("stimulus" or "action"), ``event``, ``content`` and ``timestamp``. Whatever it returns
(other than None) becomes a row. Other agents are found through the agent's world; without one,
an agent other than the focus agent is passed as None, as TinyTroupe does for unknown names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

    from ..agent import TinyPerson
    from ..environment import TinyWorld

Rule = Callable[..., Any]


class ResultsReducer:
    """Rules per event type, applied to agents' episodes (or a world's event log)."""

    def __init__(self) -> None:
        self.results: dict[str, Any] = {}
        self.rules: dict[str, Rule] = {}

    def add_reduction_rule(self, trigger: str, func: Rule) -> "ResultsReducer":
        if trigger in self.rules:
            raise ValueError(f"a reduction rule for {trigger!r} already exists; give each event type one rule")
        self.rules[trigger] = func
        return self

    def reduce_agent(self, agent: "TinyPerson") -> list[Any]:
        """The rows the rules make of the agent's events, in the order the events happened."""
        reduction: list[Any] = []
        for event in agent.state.episodes:
            rule = self.rules.get(event.type)
            if rule is None:
                continue
            if event.direction == "stimulus":
                source, target = _agent(agent, event.source), agent
            else:
                source, target = agent, _agent(agent, event.target)
            row = rule(
                focus_agent=agent, source_agent=source, target_agent=target, kind=event.direction,
                event=event.type, content=event.content, timestamp=event.time,
            )
            if row is not None:
                reduction.append(row)
        self.results[agent.name] = reduction
        return reduction

    def reduce_agent_to_dataframe(self, agent: "TinyPerson", column_names: list[str] | None = None) -> "pl.DataFrame":
        """The agent's rows as a polars DataFrame (rows may be dicts, or sequences named by column_names)."""
        return _frame(self.reduce_agent(agent), column_names)

    def reduce_world_to_dataframe(self, world: "TinyWorld", column_names: list[str] | None = None) -> "pl.DataFrame":
        """Every agent's rows, one after another, with an ``agent`` column first when rows are dicts."""
        rows: list[Any] = []
        for agent in world.agents:
            for row in self.reduce_agent(agent):
                rows.append({"agent": agent.name, **row} if isinstance(row, dict) else row)
        return _frame(rows, column_names)


def _agent(focus: "TinyPerson", name: str) -> "TinyPerson | None":
    if not name:
        return None
    if name == focus.name:
        return focus
    environment = focus.environment
    find = getattr(environment, "get_agent_by_name", None)
    return find(name) if find is not None else None


def _frame(rows: Iterable[Any], column_names: list[str] | None) -> "pl.DataFrame":
    import polars as pl

    rows = list(rows)
    if rows and isinstance(rows[0], dict):
        frame = pl.DataFrame(rows)
        return frame.select(column_names) if column_names else frame
    return pl.DataFrame(rows, schema=column_names, orient="row")
