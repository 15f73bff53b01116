"""ResultsReporter: Markdown reports from agents (by interviewing them), from their interactions, or from data.

As TinyTroupe's reporter, with its three options: ``report_from_agents`` asks each agent the
reporting task (``listen_and_act``) and has the model write the report from their answers;
``report_from_interactions`` writes it from the recorded events; ``report_from_data`` from any text
or JSON-able data. One report is one text call (``prompts/report*.j2``), cached by content.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from . import prompts
from .asking import write

if TYPE_CHECKING:
    from .agent.person import TinyPerson
    from .llm import LLMGateway

DEFAULT_REQUIREMENTS = "Present the findings in a clear, structured manner."


def _agents(target: Any) -> list["TinyPerson"]:
    """A person, a world (its agents) or a list of people, as a list of people."""
    if isinstance(target, (list, tuple)):
        return list(target)
    return list(getattr(target, "agents", None) or [target])


class ResultsReporter:
    def __init__(
        self,
        default_reporting_task: str = "Summarize the key findings, insights, and outcomes from the simulation data.",
        verbose: bool = False,
        *,
        gateway: "LLMGateway | None" = None,
    ) -> None:
        self.default_reporting_task = default_reporting_task
        self.verbose = verbose
        self.gateway = gateway
        self.last_report: str | None = None

    def _write(self, title: str, task: str, requirements: str, agents: Sequence[dict[str, Any]], data: str, owners: tuple[Any, ...]) -> str:
        reply = write(
            "report", self.gateway, purpose="report", owners=owners,
            title=title, task=task, requirements=requirements, agents=agents, data=data,
        )
        self.last_report = reply.text.strip()
        return self.last_report

    def report_from_agents(
        self,
        agents: Any,
        reporting_task: str | None = None,
        report_title: str = "Simulation Report",
        include_agent_summaries: bool = True,
        consolidate_responses: bool = True,
        requirements: str = DEFAULT_REQUIREMENTS,
    ) -> str:
        """Interview every agent about the task, then write the report from their answers."""
        task = reporting_task or self.default_reporting_task
        people = _agents(agents)
        entries = []
        for person in people:
            actions = person.listen_and_act(prompts.render("report_interview", task=task), return_actions=True) or []
            entries.append({
                "name": person.name,
                "summary": person.minibio() if include_agent_summaries else "",
                "answer": " ".join(a.content for a in actions if a.type == "TALK"),
                "events": None,
            })
        return self._write(report_title, task, requirements, entries, "", tuple(people))

    def report_from_interactions(
        self,
        agents: Any,
        report_title: str = "Interaction Analysis Report",
        include_agent_summaries: bool = True,
        first_n: int | None = None,
        last_n: int | None = None,
        max_content_length: int | None = None,
        requirements: str = DEFAULT_REQUIREMENTS,
    ) -> str:
        """Write the report from what the agents said and did (first_n / last_n events of each)."""
        people = _agents(agents)
        entries = []
        for person in people:
            events = list(person.state.episodes)
            if first_n is not None or last_n is not None:
                events = events[: first_n or 0] + (events[-last_n:] if last_n else [])
            entries.append({
                "name": person.name,
                "summary": person.minibio() if include_agent_summaries else "",
                "answer": None,
                "events": events,
            })
        return self._write(report_title, self.default_reporting_task, requirements, entries, "", tuple(people))

    def report_from_data(self, data: Any, report_title: str = "Data Report", requirements: str = DEFAULT_REQUIREMENTS) -> str:
        """Write the report from text or JSON-able data (e.g. extraction results)."""
        text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, indent=2, default=str)
        return self._write(report_title, self.default_reporting_task, requirements, [], text, ())

    def display_report(self, report: str | None = None) -> None:
        from rich.console import Console
        from rich.markdown import Markdown

        Console().print(Markdown(self._report(report)))

    def save_report(self, filename: str | os.PathLike[str], report: str | None = None, verbose: bool | None = None) -> Path:
        from .artifacts import _atomic_write

        path = Path(filename)
        _atomic_write(path, self._report(report).encode("utf-8"))
        return path

    def _report(self, report: str | None) -> str:
        text = report if report is not None else self.last_report
        if text is None:
            raise ValueError("no report yet; call one of the report_from_* methods first or pass report=")
        return text
