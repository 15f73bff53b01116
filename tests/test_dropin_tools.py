"""Tools as actions (TinyWordProcessor, TinyCalendar), artifacts, enrichment, stories and reports, against the fake server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.conftest import fake_config
from tests.fake_openai import FakeOpenAI
from tests.scripted import Script, done, schema_of, talk, turn_requests
from troupe import TinyPerson, TinyWorld
from troupe.artifacts import ArtifactExporter
from troupe.enrichment import TinyEnricher, TinyStyler
from troupe.errors import SpecError
from troupe.llm import LLMGateway
from troupe.reporting import ResultsReporter
from troupe.steering import Intervention, TinyStory
from troupe.tools import TinyCalendar, TinyToolUse, TinyWordProcessor, documents


class Writer:
    """Plain-text requests (no response schema) answered by ``text(body)``; structured ones by the script."""

    def __init__(self, script: Script, text: Callable[[dict[str, Any]], str]) -> None:
        self.script, self.text = script, text
        self.texts: list[dict[str, Any]] = []

    def __call__(self, body: dict[str, Any]) -> Any:
        if not schema_of(body) and not body.get("response_format"):
            self.texts.append(body)
            return self.text(body)
        return self.script(body)


def _prompt(body: dict[str, Any]) -> str:
    return "\n".join(m["content"] for m in body["messages"])


def _action(type_: str, content: Any) -> dict[str, str]:
    return {"type": type_, "content": content if isinstance(content, str) else json.dumps(content), "target": ""}


@pytest.fixture
def gateway(fake: FakeOpenAI, tmp_path: Path) -> LLMGateway:
    return LLMGateway(fake_config(fake, tmp_path))


def _lisa(gateway: LLMGateway, *tools: Any) -> TinyPerson:
    return TinyPerson("Lisa", gateway=gateway, config=gateway.config).add_mental_faculties([TinyToolUse(tools=tools)])


# ----- calendar -----


def test_calendar_adds_and_lists_events_and_survives_a_restore(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    Script({"Lisa": [
        [_action("ADD_EVENT", {"title": "Team sync", "date": "2025-03-04", "start_time": "10:00"}),
         _action("ADD_EVENT", {"title": "Yoga", "date": "2025-03-03", "start_time": "07:00"}), done()],
        [_action("ADD_EVENT", {"title": "No date"}), done()],
        [_action("LIST_EVENTS", {"date": "2025-03-04"}), done()],
        [_action("LIST_EVENTS", {}), done()],
    ]}).install(fake)
    lisa = _lisa(gateway, TinyCalendar())
    lisa.listen_and_act("Plan your week.")
    first = turn_requests(fake, "Lisa")[0]
    assert {"ADD_EVENT", "LIST_EVENTS"} <= set(schema_of(first)["$defs"]["Action"]["properties"]["type"]["enum"])
    assert "ADD_EVENT" in first["messages"][0]["content"]
    lisa.listen_and_act("Add one more.")
    tool_says = [e.content for e in lisa.state.episodes if e.type == "TOOL"]
    assert tool_says[:2] == ["Added 'Team sync' on 2025-03-04 to your calendar.", "Added 'Yoga' on 2025-03-03 to your calendar."]
    assert tool_says[2].startswith("ADD_EVENT failed: date: Field required.")

    # Restored from JSON (as a pipeline step does), the agent has its calendar and its entries back.
    restored = TinyPerson.from_json(json.loads(json.dumps(lisa.to_json())), gateway=gateway, config=gateway.config)
    assert [type(f).__name__ for f in restored.faculties] == ["TinyCalendar"]
    restored.listen_and_act("What is on Tuesday?")
    restored.listen_and_act("And all week?")
    listed = [e.content for e in restored.state.episodes if e.type == "TOOL"][-2:]
    assert listed == ["Your calendar: 2025-03-04 10:00 Team sync.", "Your calendar: 2025-03-03 07:00 Yoga; 2025-03-04 10:00 Team sync."]
    assert "Your calendar: 2025-03-04 10:00 Team sync." in turn_requests(fake, "Lisa")[-1]["messages"][-1]["content"]


def test_a_tool_owned_by_someone_else_refuses(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    Script({"Lisa": [[_action("ADD_EVENT", {"title": "x", "date": "2025-01-01"}), done()]]}).install(fake)
    oscar = TinyPerson("Oscar", gateway=gateway, config=gateway.config)
    lisa = _lisa(gateway, TinyCalendar(owner=oscar))
    lisa.listen_and_act("Plan.")
    assert [e.content for e in lisa.state.episodes if e.type == "TOOL"] == ["TinyCalendar belongs to Oscar; you cannot use it."]
    assert not [e for e in lisa.state.episodes if e.type == "CALENDAR_ENTRY"]


# ----- word processor, enrichment, artifacts -----


def test_write_document_is_enriched_exported_and_recorded(fake: FakeOpenAI, gateway: LLMGateway, tmp_path: Path) -> None:
    draft = {"title": "Search report", "content": "Relevance improved.", "author": "Lisa"}
    writer = Writer(
        Script({"Lisa": [[_action("WRITE_DOCUMENT", draft), done()]]}),
        lambda body: "# Search report\n\nRelevance **improved** by 4%.\n\n- fewer empty results\n- faster answers",
    )
    fake.responder = writer
    exporter = ArtifactExporter(tmp_path / "out")
    lisa = _lisa(gateway, TinyWordProcessor(exporter=exporter, enricher=TinyEnricher(gateway=gateway)))
    lisa.listen_and_act("Write up your results.")
    assert "Relevance improved." in _prompt(writer.texts[0])  # the draft went to the enricher
    [document] = documents(lisa)
    assert document["title"] == "Search report" and "by 4%" in document["content"]
    folder = tmp_path / "out" / "Document"
    assert sorted(p.name for p in folder.iterdir()) == ["Search report.docx", "Search report.json", "Search report.md"]
    assert (folder / "Search report.md").read_text().startswith("# Search report")
    assert json.loads((folder / "Search report.json").read_text())["author"] == "Lisa"

    import docx

    word = docx.Document(str(folder / "Search report.docx"))
    paragraphs = [(p.style.name, p.text) for p in word.paragraphs]
    assert paragraphs == [
        ("Heading 1", "Search report"), ("Normal", "Relevance improved by 4%."),
        ("List Bullet", "fewer empty results"), ("List Bullet", "faster answers"),
    ]
    assert any(run.bold for run in word.paragraphs[1].runs if run.text == "improved")
    assert [e.content for e in lisa.state.episodes if e.type == "TOOL"] == ["The document 'Search report' was written."]


def test_malformed_document_is_told_back_to_the_agent(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    Script({"Lisa": [[_action("WRITE_DOCUMENT", "just some text"), done()]]}).install(fake)
    lisa = _lisa(gateway, TinyWordProcessor())
    lisa.listen_and_act("Write.")
    assert [e.content.split(".")[0] for e in lisa.state.episodes if e.type == "TOOL"] == ["WRITE_DOCUMENT failed: the content must be JSON"]
    assert documents(lisa) == []


def test_artifact_exporter_formats_and_bad_names(tmp_path: Path) -> None:
    exporter = ArtifactExporter(tmp_path)
    assert exporter.export("notes", "plain text", "Note").read_text() == "plain text"
    assert json.loads(exporter.export("data", {"a": 1}, "Data", target_format="json").read_text()) == {"a": 1}
    assert exporter.export("doc", {"content": "# Title"}, "Doc", target_format="md").read_text() == "# Title"
    with pytest.raises(SpecError, match="target_format: 'pdf' is not supported; use one of json, txt, md, docx"):
        exporter.export("x", "y", "Doc", target_format="pdf")
    with pytest.raises(SpecError, match=r"artifact_name: '../escape' cannot be a file name"):
        exporter.export("../escape", "y", "Doc")
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["data.json", "doc.md", "notes.txt"]


def test_enricher_and_styler_send_their_inputs_and_strip_a_fence(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    writer = Writer(Script(), lambda body: "```markdown\nA longer text.\n```")
    fake.responder = writer
    assert TinyEnricher(gateway=gateway).enrich_content("Make it longer", "Short.", content_type="Email") == "A longer text."
    styler = TinyStyler(use_past_results_in_context=True, gateway=gateway)
    assert styler.apply_style("Short.", "pirate speak") == "A longer text."
    styler.apply_style("Second.", "pirate speak")
    enrich, style1, style2 = (_prompt(b) for b in writer.texts)
    assert "Requirements: Make it longer" in enrich and "Content type: Email" in enrich and "Short." in enrich
    assert "Style: pirate speak" in style1 and "Earlier result" not in style1
    assert "Earlier result, for consistency:\nA longer text." in style2  # past results kept in context
    assert writer.texts[1]["temperature"] == 0.7


# ----- steering -----


def test_story_starts_continues_from_the_record_and_is_told_into_the_world(fake: FakeOpenAI, gateway: LLMGateway) -> None:
    parts = iter(["Lisa and Oscar meet at a cafe.", "A storm cuts the power."])
    writer = Writer(Script({"Lisa": [[talk("Nice cafe!"), done()]]}), lambda body: next(parts))
    fake.responder = writer
    lisa, oscar = (TinyPerson(n, gateway=gateway, config=gateway.config) for n in ("Lisa", "Oscar"))
    world = TinyWorld("Cafe", [lisa, oscar], gateway=gateway)
    world.make_everyone_accessible()
    story = TinyStory(world, purpose="Be a cozy drama.")
    assert story.start_story(number_of_words=50) == "Lisa and Oscar meet at a cafe."
    story.tell()
    world.run(1)
    assert story.continue_story(include_plot_twist=True) == "A storm cuts the power."
    first, second = (_prompt(b) for b in writer.texts)
    assert "Be a cozy drama." in first and "about 50 words" in first and "Start the story" in first
    assert 'Lisa said (to Oscar): "Nice cafe!"' in second and "The story so far:\nLisa and Oscar meet at a cafe." in second
    assert "Include a plot twist." in second
    assert ("Narrator", "Lisa and Oscar meet at a cafe.") in [(e.source, e.content) for e in oscar.state.episodes]
    assert story.current_story == "Lisa and Oscar meet at a cafe.\n\nA storm cuts the power."
    assert Intervention.__module__ == "troupe.environment.intervention"
    with pytest.raises(ValueError, match="exactly one of environment= or agent="):
        TinyStory()


# ----- reporting -----


def test_reports_from_agents_interactions_and_data(fake: FakeOpenAI, gateway: LLMGateway, tmp_path: Path) -> None:
    writer = Writer(Script({"Lisa": [[talk("The bakery is great."), done()]]}), lambda body: "# Report\n\nPeople like the bakery.")
    fake.responder = writer
    lisa = TinyPerson("Lisa", gateway=gateway, config=gateway.config).define("age", 28)
    reporter = ResultsReporter(gateway=gateway)
    assert reporter.report_from_agents([lisa], reporting_task="What do you think of the bakery?") == "# Report\n\nPeople like the bakery."
    interview = _prompt(turn_requests(fake, "Lisa")[0])
    assert "What do you think of the bakery?" in interview
    assert "Answer: The bakery is great." in _prompt(writer.texts[0])
    reporter.report_from_interactions(lisa, last_n=2)
    interactions = _prompt(writer.texts[1])
    assert '[0] You TALK: "The bakery is great."' in interactions and "What do you think of the bakery?" not in interactions
    reporter.report_from_data({"would_visit": 0.7}, report_title="Bakery data")
    assert '"would_visit": 0.7' in _prompt(writer.texts[2]) and "Report title: Bakery data" in _prompt(writer.texts[2])
    saved = reporter.save_report(tmp_path / "report.md")
    assert saved.read_text() == "# Report\n\nPeople like the bakery."
    with pytest.raises(ValueError, match="no report yet"):
        ResultsReporter().save_report(tmp_path / "none.md")


def test_a_fresh_process_restores_an_agent_with_shipped_tools(fake: FakeOpenAI, gateway: LLMGateway, tmp_path: Path) -> None:
    """As a pipeline worker does: nothing imported troupe.tools there before the agent arrives."""
    import subprocess
    import sys

    lisa = _lisa(gateway, TinyCalendar(), TinyWordProcessor())
    state = tmp_path / "lisa.json"
    state.write_text(json.dumps(lisa.to_json()))
    code = (
        "import json, sys; from troupe.agent.person import TinyPerson; "
        f"a = TinyPerson.from_json(json.load(open({str(state)!r})), transcript=False); "
        "assert 'troupe.tools' in sys.modules; print([type(f).__name__ for f in a.faculties])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['TinyCalendar', 'TinyWordProcessor']"
