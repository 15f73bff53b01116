"""TinySocialNetwork: a world whose relations decide who can reach whom.

Agents can talk to, and reach out to, only the agents they are related to; a message with no
target goes to those relations only. Before every step each agent's accessible list is reset to
its relations, so the prompt shows exactly who it can talk to.
"""

from __future__ import annotations

from ..agent.person import TinyPerson
from .world import TinyWorld


class TinySocialNetwork(TinyWorld):
    kind = "TinySocialNetwork"

    def add_relation(self, a: TinyPerson, b: TinyPerson, name: str = "default") -> "TinySocialNetwork":
        """Relate two agents (both are added to the network if they are not in it yet)."""
        for agent in (a, b):
            if agent not in self.agents:
                self.add_agent(agent)
        relation = (a.name, b.name, name)
        if relation not in self.state.relations:
            self.state.relations.append(relation)
        return self

    def related(self, a: TinyPerson, b: TinyPerson) -> bool:
        return any({x, y} == {a.name, b.name} for x, y, _ in self.state.relations)

    def can_reach(self, source: TinyPerson, target: TinyPerson) -> bool:
        return source is not target and self.related(source, target)

    def _before_step(self) -> None:
        for agent in self.agents:
            agent.make_all_agents_inaccessible()
            for other in self.agents:
                if self.related(agent, other):
                    agent.make_agent_accessible(other)
