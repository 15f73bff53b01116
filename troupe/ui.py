"""Notebook display: HTML cards for people and worlds, and a minimal chat with one agent.

TinyTroupe's ``ui`` offers a chat widget; here :class:`NotebookChat` is its minimal form: in a
notebook it shows an ipywidgets text box when ipywidgets is installed, and anywhere it can be
driven from code with :meth:`NotebookChat.send` (each message is ``listen_and_act``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from . import _html

if TYPE_CHECKING:
    from .agent.person import TinyPerson
    from .environment import TinyWorld


def person_html(person: "TinyPerson", last_n: int = 10) -> str:
    from .agent.render import persona_outline

    outline = persona_outline(person.persona.to_dict(), 0).splitlines()
    cognitive = person.state.cognitive.model_dump()
    return _html.section(
        f"TinyPerson {person.name}",
        _html.definition_list(line.split(": ", 1) if ": " in line else (line, "") for line in outline),
        _html.definition_list((k, v) for k, v in cognitive.items() if v),
        _html.events(person.state.episodes, last_n),
    )


def world_html(world: "TinyWorld", last_n: int = 20) -> str:
    people = _html.table(
        ["agent", "turns", "can reach"],
        [[a.name, a.state.turns, ", ".join(a.state.accessible)] for a in world.agents],
    )
    when = f", {world.current_datetime:%Y-%m-%d %H:%M}" if world.current_datetime else ""
    return _html.section(
        f"{type(world).__name__} {world.name} (step {world.step}{when})", people, _html.events(world.state.events, last_n)
    )


class NotebookChat:
    """Chat with agents: ``NotebookChat([lisa, oscar]).send("Hi", to="Oscar")`` returns what that agent said."""

    def __init__(self, agents: "TinyPerson | Sequence[TinyPerson]") -> None:
        self.agents = list(agents) if isinstance(agents, (list, tuple)) else [agents]
        if not self.agents:
            raise ValueError("NotebookChat needs at least one agent")
        self.history: list[tuple[str, str, str]] = []

    def _agent(self, name: str | None) -> "TinyPerson":
        if name is None:
            return self.agents[0]
        found = next((a for a in self.agents if a.name == name), None)
        if found is None:
            raise ValueError(f"no agent named {name!r} in this chat; choose one of {', '.join(a.name for a in self.agents)}")
        return found

    def send(self, message: str, to: str | None = None) -> str:
        """Say message to one agent (the first by default); returns what it said back."""
        agent = self._agent(to)
        actions = agent.listen_and_act(message, return_actions=True) or []
        reply = " ".join(a.content for a in actions if a.type == "TALK")
        self.history.extend([("You", agent.name, message), (agent.name, "You", reply)])
        return reply

    def _repr_html_(self) -> str:
        return _html.table(["from", "to", "said"], self.history, caption="Chat")

    def display(self) -> Any:
        """An ipywidgets chat box with an agent picker (pip install ipywidgets); or use send()."""
        try:
            import ipywidgets as widgets  # type: ignore[import-not-found]
        except ImportError:
            raise ImportError("the chat widget needs ipywidgets: pip install ipywidgets (or call send())") from None
        output = widgets.HTML(self._repr_html_())
        picker = widgets.Dropdown(options=[a.name for a in self.agents])
        box = widgets.Text(placeholder="Say something")

        def on_submit(sender: Any) -> None:
            self.send(sender.value, to=picker.value)
            sender.value = ""
            output.value = self._repr_html_()

        box.on_submit(on_submit)
        return widgets.VBox([output, widgets.HBox([picker, box])])


AgentChatJupyterWidget = NotebookChat  # TinyTroupe's name
