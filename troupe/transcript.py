"""The readable transcript TinyTroupe users know, rendered with rich.

    ──────────── Chat Room step 1 of 4 ────────────
    USER --> Lisa Carter: [CONVERSATION]
              > Tell me about your work.
    Lisa Carter acts: [TALK]
              > I improve search relevance at Microsoft.

Colours show in a terminal and in a notebook (rich renders to both); ``enabled=False`` silences
it, and :meth:`Transcript.text` gives the plain text for tests and logs.
"""

from __future__ import annotations

import textwrap
from typing import Iterable

from rich.console import Console
from rich.text import Text

from .agent.state import Event

_STYLES = {
    "CONVERSATION": "bold bright_cyan",
    "TALK": "bold green",
    "THINK": "green",
    "REACH_OUT": "bold magenta",
    "DONE": "grey50",
    "VISUAL": "bold bright_yellow",
    "THOUGHT": "yellow",
    "INTERNAL_GOAL_FORMULATION": "yellow",
    "SOCIAL": "cyan",
    "CONTEXT": "cyan",
}
_INDENT = " " * 10


def event_lines(event: Event) -> tuple[str, str]:
    """The header line and the quoted content of an event (content may be empty)."""
    if event.direction == "action":
        header = f"{event.agent} acts: [{event.type}]"
        if event.target:
            header += f" -> {event.target}"
    else:
        header = f"{event.source or 'USER'} --> {event.agent}: [{event.type}]"
    quoted = ""
    if event.content:
        wrapped = textwrap.wrap(event.content, width=88) or [""]
        quoted = "\n".join(f"{_INDENT}{'> ' if i == 0 else '  '}{line}" for i, line in enumerate(wrapped))
    return header, quoted


class Transcript:
    """Prints events and step banners to a console, or nothing when disabled."""

    def __init__(self, enabled: bool = True, console: Console | None = None) -> None:
        self.enabled = enabled
        self._console = console

    @property
    def console(self) -> Console:
        """The console printed to, made on first use: a pipeline builds thousands of silent worlds."""
        if self._console is None:
            self._console = Console(highlight=False, soft_wrap=True)
        return self._console

    def event(self, event: Event) -> None:
        if not self.enabled:
            return
        header, quoted = event_lines(event)
        style = _STYLES.get(event.type, "bold")
        self.console.print(Text(header, style=style))
        if quoted:
            self.console.print(Text(quoted, style=style.replace("bold ", "")))

    def banner(self, world: str, step: int, total: int) -> None:
        if self.enabled:
            self.console.rule(Text(f"{world} step {step} of {total}"), style="bright_black")

    def replay(self, world: str, step: int, total: int, events: Iterable[Event]) -> None:
        """Print one step of recorded events under its banner (step 0: before the first step, no banner)."""
        if step > 0:
            self.banner(world, step, total)
        for event in events:
            self.event(event)

    def note(self, message: str) -> None:
        if self.enabled:
            self.console.print(Text(message, style="italic bright_black"))

    @classmethod
    def recording(cls, width: int = 100) -> "Transcript":
        """A transcript that prints nowhere but keeps its text (for tests and saved logs)."""
        return cls(True, Console(record=True, width=width, file=_Discard(), color_system=None, highlight=False))

    def text(self) -> str:
        return self.console.export_text(clear=False)


class _Discard:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        return None
