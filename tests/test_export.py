"""Training exports of a real run: conversations from events, OpenAI chat JSONL, ShareGPT JSON and
Parquet, each read back with Hugging Face ``datasets`` (offline) with roles and turn order intact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from tests.fake_openai import FakeOpenAI
from tests.sample_run import AGENTS, HOST_LINE, STEPS, SampleRun, make_run
from troupe.errors import ConfigError, SpecError
from troupe.export import ChatExample, Format, Per, export_run, run_conversations


@pytest.fixture(scope="module")
def sample(fake_server: FakeOpenAI, prefect_server: str, tmp_path_factory: pytest.TempPathFactory) -> SampleRun:
    return make_run(fake_server, tmp_path_factory.mktemp("export") / "datasets")



def roles(messages: list[dict[str, str]]) -> list[str]:
    return [m["role"] for m in messages]


def lines(text: str) -> list[str]:
    return text.split("\n")


def check_agent_view(name: str, messages: list[dict[str, str]]) -> None:
    """system persona, then the host and the others' turns as user, the agent's own turns as assistant."""
    others = [a for a in AGENTS if a != name]
    assert roles(messages) == ["system", "user", "assistant", "user", "assistant"]
    assert messages[0]["content"].startswith(f"You are {name}.\n")
    assert "occupation.title: " in messages[0]["content"]
    assert messages[1]["content"] == f"Host: {HOST_LINE}"
    assert messages[2]["content"] == f"{name}, turn 1"
    # what the others said at step 1 reaches the agent at the end of the step, one message merged
    assert sorted(lines(messages[3]["content"])) == [f"{o}: {o}, turn 1" for o in others]
    assert messages[4]["content"] == f"{name}, turn {STEPS}"  # what it heard after its last turn is dropped


def test_each_agent_view_is_its_persona_its_stimuli_and_its_actions(sample: SampleRun) -> None:
    found = run_conversations(sample.root, sample.run_id, Per.agent)
    assert [(c.world, c.agent) for c in found] == [("Street", a) for a in AGENTS]
    for conversation in found:
        check_agent_view(conversation.agent or "", [m.model_dump() for m in conversation.messages])


def test_a_world_conversation_has_every_speaker_in_order(sample: SampleRun) -> None:
    (conversation,) = run_conversations(sample.root, sample.run_id, Per.conversation)
    messages = [m.model_dump() for m in conversation.messages]
    assert conversation.agent is None
    assert roles(messages) == ["system", "user", "assistant"]
    assert messages[0]["content"].startswith(f"A conversation in Street between {', '.join(AGENTS)}.")
    assert messages[1]["content"] == f"Host: {HOST_LINE}"  # broadcast to three people, told once
    spoken = lines(messages[2]["content"])
    assert sorted(spoken[:3]) == [f"{a}: {a}, turn 1" for a in AGENTS]
    assert sorted(spoken[3:]) == [f"{a}: {a}, turn 2" for a in AGENTS]


@pytest.mark.parametrize("per", list(Per))
def test_openai_chat_jsonl_is_valid_and_loads_with_datasets(sample: SampleRun, hf: Any, tmp_path: Path, per: Per) -> None:
    out = tmp_path / "train.jsonl"
    summary = export_run(sample.root, sample.run_id, Format.openai_chat, out, per)
    expected = [[m.model_dump() for m in c.messages] for c in run_conversations(sample.root, sample.run_id, per)]
    assert summary.conversations == len(expected) == (len(AGENTS) if per is Per.agent else 1)
    raw = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert all(set(record) == {"messages"} for record in raw)  # OpenAI rejects unknown keys
    for record in raw:
        ChatExample.model_validate(record)
    loaded = hf.load_dataset("json", data_files=str(out), split="train", cache_dir=str(tmp_path / "hf"))
    assert [row["messages"] for row in loaded] == expected
    if per is Per.agent:
        for name, row in zip(AGENTS, loaded):
            check_agent_view(name, row["messages"])


def test_sharegpt_json_loads_with_datasets(sample: SampleRun, hf: Any, tmp_path: Path) -> None:
    out = tmp_path / "train.json"
    export_run(sample.root, sample.run_id, Format.sharegpt, out)
    loaded = hf.load_dataset("json", data_files=str(out), split="train", cache_dir=str(tmp_path / "hf"))
    assert loaded.num_rows == len(AGENTS)
    for name, row in zip(AGENTS, loaded):
        assert row["id"] == f"{sample.run_id}/Street/{name}"
        turns = row["conversations"]
        assert [t["from"] for t in turns] == ["system", "human", "gpt", "human", "gpt"]
        check_agent_view(name, [{"role": {"human": "user", "gpt": "assistant"}.get(t["from"], t["from"]), "content": t["value"]} for t in turns])


def test_parquet_has_a_messages_column_and_loads_with_datasets(sample: SampleRun, hf: Any, tmp_path: Path) -> None:
    out = tmp_path / "train.parquet"
    export_run(sample.root, sample.run_id, Format.parquet, out)
    loaded = hf.load_dataset("parquet", data_files=str(out), split="train", cache_dir=str(tmp_path / "hf"))
    assert {"messages", "run_id", "world", "agent"} <= set(loaded.column_names)
    assert loaded["agent"] == list(AGENTS)
    assert set(loaded["run_id"]) == {sample.run_id}
    for name, row in zip(AGENTS, loaded):
        check_agent_view(name, row["messages"])


@pytest.mark.parametrize(
    "messages, problem",
    [
        ([{"role": "user", "content": "hi"}], "at least one assistant"),
        ([{"role": "assistant", "content": "hi"}], "alternate"),
        ([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}, {"role": "assistant", "content": "c"}], "alternate"),
        ([{"role": "user", "content": "a"}, {"role": "system", "content": "b"}, {"role": "assistant", "content": "c"}], "system"),
        ([{"role": "user", "content": "a"}, {"role": "assistant", "content": "  "}], "blank"),
        ([{"role": "user", "content": "a"}, {"role": "tool", "content": "b"}], "role"),
    ],
)
def test_the_chat_format_refuses_what_fine_tuning_rejects(messages: list[dict[str, str]], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        ChatExample.model_validate({"messages": messages})


def test_bad_input_is_one_line_and_writes_nothing(sample: SampleRun, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--format openai-chat writes \.jsonl"):
        export_run(sample.root, sample.run_id, Format.openai_chat, tmp_path / "train.json")
    with pytest.raises(SpecError, match="run nope: not found"):
        export_run(sample.root, "nope", Format.sharegpt, tmp_path / "train.json")
    assert list(tmp_path.iterdir()) == []


def test_the_cli_exports_and_stops_on_bad_input_with_exit_2(sample: SampleRun, tmp_path: Path) -> None:
    from flows.cli import app

    runner = CliRunner()
    out = tmp_path / "train.jsonl"
    ok = runner.invoke(app, ["export", sample.run_id, "--datasets", str(sample.root), "--format", "openai-chat", "--out", str(out)])
    assert ok.exit_code == 0, ok.output
    assert f"{len(AGENTS)} conversations" in ok.output
    assert len(out.read_text(encoding="utf-8").splitlines()) == len(AGENTS)
    missing = tmp_path / "missing.jsonl"
    bad = runner.invoke(app, ["export", "nope", "--datasets", str(sample.root), "-f", "openai-chat", "-o", str(missing)])
    assert bad.exit_code == 2
    assert "run nope: not found" in bad.output and len(bad.output.strip().splitlines()) == 1
    assert not missing.exists()


def event(seq: int, agent: str, direction: str, kind: str, source: str, content: str, target: str = "") -> dict[str, Any]:
    return {"world": "W", "seq": seq, "step": 1, "agent": agent, "direction": direction, "type": kind, "source": source,
            "target": target, "content": content}


def test_an_agent_who_speaks_first_gets_its_cue_and_bare_actions_are_left_out() -> None:
    from troupe.export.conversations import conversations

    events = [
        event(0, "", "stimulus", "CONTEXT", "", "Night falls."),  # a world-level event: nobody's view
        event(1, "A", "action", "TALK", "A", "Hi B", target="B"),
        event(2, "A", "action", "REACH_OUT", "A", "", target="C"),
        event(3, "A", "action", "DONE", "A", ""),
        event(4, "B", "stimulus", "CONVERSATION", "A", "Hi B"),  # B never acts: no conversation of its own
    ]
    (a,) = conversations("r", events, [json.dumps({"name": "A", "age": 40})], Per.agent)
    assert [m.model_dump() for m in a.messages] == [
        {"role": "system", "content": "You are A.\nage: 40"},
        {"role": "user", "content": "Act now as A."},
        {"role": "assistant", "content": "(to B) Hi B\n[REACH_OUT -> C]"},
    ]
    (world,) = conversations("r", events, [], Per.conversation)
    assert [(m.role, m.content) for m in world.messages][1:] == [("user", "[CONTEXT] Night falls."), ("assistant", "A: (to B) Hi B")]
