"""Steering a simulation, as ``tinytroupe.steering``: TinyStory, and Intervention (re-exported).

A TinyStory writes the narrative of a world (or of one agent) from its recorded events, one text
call per part (``prompts/story*.j2``); :meth:`TinyStory.tell` puts the latest part into the
simulation, as a narrator's words every agent hears, so the story steers what happens next.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .asking import write

if TYPE_CHECKING:
    from .agent.person import TinyPerson
    from .environment import TinyWorld
    from .llm import LLMGateway

NARRATOR = "Narrator"


class TinyStory:
    def __init__(
        self,
        environment: "TinyWorld | None" = None,
        agent: "TinyPerson | None" = None,
        purpose: str = "Be a realistic simulation.",
        context: str = "",
        first_n: int = 10,
        last_n: int = 20,
        include_omission_info: bool = True,
        *,
        gateway: "LLMGateway | None" = None,
    ) -> None:
        if (environment is None) == (agent is None):
            raise ValueError("TinyStory needs exactly one of environment= or agent=")
        self.environment = environment
        self.agent = agent
        self.purpose = purpose
        self.context = context
        self.first_n = first_n
        self.last_n = last_n
        self.include_omission_info = include_omission_info
        self.gateway = gateway
        self.parts: list[str] = []

    @property
    def current_story(self) -> str:
        return "\n\n".join(self.parts)

    def _events(self) -> tuple[list[Any], int]:
        owner: Any = self.environment if self.environment is not None else self.agent
        events = list(owner.state.events if self.environment is not None else owner.state.episodes)
        if len(events) <= self.first_n + self.last_n:
            return events, 0
        shown = events[: self.first_n] + (events[-self.last_n:] if self.last_n else [])
        return shown, len(events) - len(shown)

    def _part(self, requirements: str, number_of_words: int, include_plot_twist: bool) -> str:
        events, omitted = self._events()
        owner = self.environment if self.environment is not None else self.agent
        reply = write(
            "story", self.gateway, purpose="story", owners=(owner,),
            purpose_text=self.purpose, context=self.context, story=self.current_story, events=events,
            omitted=omitted if self.include_omission_info else 0, requirements=requirements,
            number_of_words=number_of_words, include_plot_twist=include_plot_twist,
        )
        part = reply.text.strip()
        self.parts.append(part)
        return part

    def start_story(self, requirements: str = "Start some interesting story about the agents.", number_of_words: int = 100, include_plot_twist: bool = False) -> str:
        """The story's opening (it replaces any story told so far)."""
        self.parts = []
        return self._part(requirements, number_of_words, include_plot_twist)

    def continue_story(self, requirements: str = "Continue the story in an interesting way.", number_of_words: int = 100, include_plot_twist: bool = False) -> str:
        return self._part(requirements, number_of_words, include_plot_twist)

    def tell(self, part: str | None = None) -> str:
        """Put a part of the story (the latest by default) into the simulation, from the narrator."""
        text = part if part is not None else (self.parts[-1] if self.parts else "")
        if not text:
            raise ValueError("no story to tell yet; call start_story() first")
        if self.environment is not None:
            self.environment.broadcast(text, source=NARRATOR)
        else:
            assert self.agent is not None
            self.agent.listen(text, source=NARRATOR)
        return text


def __getattr__(name: str) -> Any:
    if name == "Intervention":
        from .environment.intervention import Intervention

        return Intervention
    raise AttributeError(f"module 'troupe.steering' has no attribute {name!r}")
