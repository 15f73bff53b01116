"""Tools as actions, as ``tinytroupe.tools``: TinyTool, TinyWordProcessor, TinyCalendar.

A tool is a faculty of the agent (troupe.agent.person.Faculty): it adds action types to the
agent's turn schema and prompt, and handles them when the agent takes them. What a tool does is
recorded in the agent's state as events (a ``TOOL`` stimulus with the result the agent reads next
turn; a ``DOCUMENT`` or ``CALENDAR_ENTRY`` event with the thing made), never kept in the tool
object: so a tool survives being saved and restored, pipeline steps included, and its products
land in the ``events`` dataset like everything else. Tools are registered by class name, so an
agent restored from JSON gets them back.

Tool inputs travel in the action's content as JSON (as in TinyTroupe); a malformed input is told
back to the agent as a TOOL stimulus saying what to fix, instead of failing the simulation.
"""

from __future__ import annotations

import json
from datetime import date as Date
from datetime import time as Time
from typing import TYPE_CHECKING, Any, Iterable, TypeVar

from pydantic import BaseModel, Field, ValidationError

from .agent.person import register_faculty

if TYPE_CHECKING:
    from .agent.person import TinyPerson
    from .agent.state import Event
    from .artifacts import ArtifactExporter
    from .enrichment import TinyEnricher

TOOL_RESULT = "TOOL"

Input = TypeVar("Input", bound=BaseModel)


def _parse(model: type[BaseModel], content: str) -> tuple[BaseModel | None, str]:
    """The action's JSON content as model, or None and a one-line problem."""
    try:
        data = json.loads(content) if content.strip() else {}
    except ValueError:
        return None, "the content must be JSON"
    if not isinstance(data, dict):
        return None, "the content must be a JSON object"
    try:
        return model.model_validate(data), ""
    except ValidationError as exc:
        error = exc.errors()[0]
        return None, f"{'.'.join(str(p) for p in error['loc']) or 'content'}: {error['msg']}"


class TinyTool:
    """A tool an agent can use. Subclasses set ``actions`` and implement :meth:`_process_action`."""

    actions: dict[str, str] = {}

    def __init__(
        self,
        name: str,
        description: str,
        owner: "TinyPerson | None" = None,
        real_world_side_effects: bool = False,
        exporter: "ArtifactExporter | None" = None,
        enricher: "TinyEnricher | None" = None,
    ) -> None:
        self.name = name
        self.description = description
        self.owner = owner
        self.real_world_side_effects = real_world_side_effects
        self.exporter = exporter
        self.enricher = enricher

    def set_owner(self, owner: "TinyPerson | None") -> None:
        self.owner = owner

    def actions_definitions_prompt(self) -> str:
        return "\n".join(f"{name}: {text}" for name, text in self.actions.items())

    def actions_constraints_prompt(self) -> str:
        return ""

    def tell(self, agent: "TinyPerson", message: str) -> None:
        """Give the agent the tool's answer; it reads it in its next turn."""
        agent._remember("stimulus", TOOL_RESULT, message, source=self.name)

    def _input(self, agent: "TinyPerson", action: "Event", model: type[Input], action_type: str) -> Input | None:
        """The action's JSON input as ``model``; when malformed, tells the agent what to fix (the
        action's definition included) and returns None, so the simulation goes on."""
        parsed, problem = _parse(model, action.content)
        if parsed is None:
            self.tell(agent, f"{action_type} failed: {problem}. {self.actions[action_type]}")
            return None
        assert isinstance(parsed, model)
        return parsed

    async def handle(self, agent: "TinyPerson", action: "Event") -> None:
        """The Faculty hook: check ownership, then process the action (in a thread: it may write files)."""
        import asyncio

        if self.owner is not None and self.owner.name != agent.name:
            self.tell(agent, f"{self.name} belongs to {self.owner.name}; you cannot use it.")
            return
        await asyncio.to_thread(self.process_action, agent, action)

    def process_action(self, agent: "TinyPerson", action: "Event") -> bool:
        if self.real_world_side_effects:
            raise PermissionError(f"{self.name} has real-world side effects; troupe does not run such tools in a simulation")
        return self._process_action(agent, action)

    def _process_action(self, agent: "TinyPerson", action: "Event") -> bool:
        raise NotImplementedError(f"{type(self).__name__} must implement _process_action")


# ----- word processor -----


class DocumentInput(BaseModel):
    title: str = Field(min_length=1, max_length=120)
    content: str = Field(min_length=1)
    author: str = ""


class TinyWordProcessor(TinyTool):
    """WRITE_DOCUMENT: the agent writes a document; it is recorded as a DOCUMENT event and exported."""

    actions = {
        "WRITE_DOCUMENT": (
            'write a document; content = JSON {"title": "...", "content": "the text, in Markdown", "author": "you"}'
        ),
    }

    def __init__(self, owner: "TinyPerson | None" = None, exporter: "ArtifactExporter | None" = None, enricher: "TinyEnricher | None" = None) -> None:
        super().__init__("TinyWordProcessor", "A word processor to write documents.", owner, False, exporter, enricher)

    def write_document(self, title: str, content: str, author: str | None = None) -> dict[str, Any]:
        """The document, enriched and exported when the tool has an enricher / exporter; returns it with its paths."""
        if self.enricher is not None:
            content = self.enricher.enrich_content(
                "Turn the draft into a complete, detailed document, keeping its intent.", content, content_type="Document"
            )
        document: dict[str, Any] = {"title": title, "content": content, "author": author or ""}
        if self.exporter is not None:
            document["files"] = [
                str(self.exporter.export(title, document, "Document", content_format="md", target_format=fmt))
                for fmt in ("md", "docx", "json")
            ]
        return document

    def _process_action(self, agent: "TinyPerson", action: "Event") -> bool:
        parsed = self._input(agent, action, DocumentInput, "WRITE_DOCUMENT")
        if parsed is None:
            return False
        document = self.write_document(parsed.title, parsed.content, parsed.author or agent.name)
        agent._remember("stimulus", "DOCUMENT", json.dumps(document, ensure_ascii=False), source=self.name)
        self.tell(agent, f"The document {parsed.title!r} was written.")
        return True


def documents(agent: "TinyPerson") -> list[dict[str, Any]]:
    """The documents an agent wrote, from its events (oldest first)."""
    return [json.loads(e.content) for e in agent.state.episodes if e.type == "DOCUMENT" and e.source == "TinyWordProcessor"]


# ----- calendar -----


class CalendarEntry(BaseModel):
    title: str = Field(min_length=1, max_length=120)
    date: Date
    start_time: Time | None = None
    end_time: Time | None = None
    description: str = ""
    mandatory_attendees: list[str] = Field(default_factory=list)
    optional_attendees: list[str] = Field(default_factory=list)


class ListInput(BaseModel):
    date: Date | None = None


class TinyCalendar(TinyTool):
    """ADD_EVENT and LIST_EVENTS: the agent's calendar, derived from its CALENDAR_ENTRY events."""

    actions = {
        "ADD_EVENT": (
            'add an event to your calendar; content = JSON {"title": "...", "date": "YYYY-MM-DD", '
            '"start_time": "HH:MM", "end_time": "HH:MM", "description": "..."}'
        ),
        "LIST_EVENTS": 'see your calendar; content = JSON {"date": "YYYY-MM-DD"} for one day, or {} for all',
    }

    def __init__(self, owner: "TinyPerson | None" = None) -> None:
        super().__init__("TinyCalendar", "A calendar to add and list events.", owner)

    def add_event(self, agent: "TinyPerson", entry: CalendarEntry) -> None:
        agent._remember("stimulus", "CALENDAR_ENTRY", entry.model_dump_json(exclude_defaults=True), source=self.name)

    def find_events(self, agent: "TinyPerson", day: Date | None = None) -> list[CalendarEntry]:
        """The agent's entries (on one day, if given), in time order."""
        entries = [CalendarEntry.model_validate_json(e.content) for e in self._entry_events(agent.state.episodes)]
        if day is not None:
            entries = [e for e in entries if e.date == day]
        return sorted(entries, key=lambda e: (e.date, e.start_time or Time.min))

    def _entry_events(self, events: Iterable["Event"]) -> list["Event"]:
        return [e for e in events if e.type == "CALENDAR_ENTRY" and e.source == self.name]

    def _process_action(self, agent: "TinyPerson", action: "Event") -> bool:
        if action.type == "ADD_EVENT":
            parsed = self._input(agent, action, CalendarEntry, "ADD_EVENT")
            if parsed is None:
                return False
            self.add_event(agent, parsed)
            self.tell(agent, f"Added {parsed.title!r} on {parsed.date.isoformat()} to your calendar.")
            return True
        if action.type == "LIST_EVENTS":
            query = self._input(agent, action, ListInput, "LIST_EVENTS")
            if query is None:
                return False
            entries = self.find_events(agent, query.date)
            lines = [
                f"{e.date.isoformat()} {e.start_time.strftime('%H:%M') if e.start_time else ''} {e.title}".replace("  ", " ")
                for e in entries
            ]
            self.tell(agent, "Your calendar: " + ("; ".join(lines) if lines else "nothing planned") + ".")
            return True
        return False


class TinyToolUse:
    """TinyTroupe's tool-use faculty: ``agent.add_mental_faculties([TinyToolUse(tools=[...])])`` adds the tools."""

    def __init__(self, tools: Iterable[TinyTool]) -> None:
        self.tools = list(tools)


register_faculty("TinyWordProcessor", TinyWordProcessor)
register_faculty("TinyCalendar", TinyCalendar)
