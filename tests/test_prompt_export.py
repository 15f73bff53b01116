"""``[datasets] store_prompts``: llm_calls keeps each call's exact request messages and completion, and
``troupe export RUN_ID --calls`` turns them into chat training data that Hugging Face ``datasets`` loads.

The bakery sample scenario runs twice for real (Prefect, the gateway, the openai client, the fake
server) with one call cache: first with the default (no prompts: the columns are null and
``--calls`` refuses with exit 2), then with store_prompts, whose calls all come from the call cache
(the fake server sees no new request) and still record their prompts. The stored messages are
compared with the requests the fake server received, and no file holds the API key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from tests.conftest import flow_overrides
from tests.fake_openai import FakeOpenAI
from tests.sample_run import SCENARIO, Responder
from troupe.datasets import connect

SECRET = "sk-troupe-test-SECRET-prompts-5d1e"


@dataclass
class Runs:
    root: Path
    plain: str  # the default: no prompts stored
    prompted: str  # store_prompts = true
    requests: list[dict[str, Any]]  # every chat request the fake server received
    paid_plain: int
    paid_prompted: int


@pytest.fixture(scope="module")
def runs(fake_server: FakeOpenAI, prefect_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    from flows import scenario_flow
    from prefect.logging.handlers import APILogWorker

    base = tmp_path_factory.mktemp("prompts")
    scenario = base / "bakery.yaml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    overrides = flow_overrides(fake_server, **{"cache.dir": str(base / "cache")})
    fake_server.reset()
    Responder().install(fake_server)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPENAI_API_KEY", SECRET)  # the key is used, so it could leak
        scenario_flow(str(scenario), run_id="plain", datasets_root=str(base / "datasets"), overrides=overrides)
        paid_plain = fake_server.calls
        scenario_flow(str(scenario), run_id="prompted", datasets_root=str(base / "datasets"),
                      overrides={**overrides, "datasets.store_prompts": "true"})
    APILogWorker.drain_all(timeout=10)
    assert fake_server.headers[0]["authorization"] == f"Bearer {SECRET}"
    yield Runs(base / "datasets", "plain", "prompted", fake_server.requests, paid_plain, fake_server.calls - paid_plain)



def calls_of(root: Path, run_id: str) -> list[dict[str, Any]]:
    connection = connect(root, run_id=run_id)
    try:
        return connection.sql("SELECT * FROM llm_calls ORDER BY purpose, seq, key").to_arrow_table().to_pylist()
    finally:
        connection.close()


def test_by_default_llm_calls_hold_no_prompt(runs: Runs) -> None:
    calls = calls_of(runs.root, runs.plain)
    assert runs.paid_plain > 0 and len(calls) >= runs.paid_plain
    assert all(c["messages"] is None and c["completion"] is None for c in calls)


def test_store_prompts_keeps_each_calls_exact_request_and_reply(runs: Runs) -> None:
    assert runs.paid_prompted == 0  # the call cache answered every call: turning it on cost nothing
    calls = calls_of(runs.root, runs.prompted)
    assert len(calls) == len(calls_of(runs.root, runs.plain)) and all(c["cache_hit"] for c in calls)
    sent = {json.dumps(request["messages"], sort_keys=True) for request in runs.requests}
    stored = {json.dumps(json.loads(c["messages"]), sort_keys=True) for c in calls}
    assert stored == sent and len(sent) == runs.paid_plain  # each stored prompt is one the server received, none missing
    for call in calls:
        assert call["completion"] and call["messages"].startswith('[{"role": "system"')
        if call["purpose"].startswith("act:"):
            name = call["purpose"].split(":", 1)[1]
            assert name in json.loads(call["messages"])[0]["content"]
    plain_keys = sorted(c["key"] for c in calls_of(runs.root, runs.plain))
    assert sorted(c["key"] for c in calls) == plain_keys  # the same calls: prompts change no cache key


def test_no_dataset_file_holds_the_api_key(runs: Runs) -> None:
    files = [f for f in runs.root.rglob("*.parquet") if "_cache" not in f.parts]
    assert any("llm_calls" in f.parts for f in files)
    for path in files:
        assert SECRET not in json.dumps(pq.read_table(path).to_pylist(), default=str), path


def test_calls_export_as_chat_jsonl_and_parquet_that_datasets_loads(runs: Runs, hf: Any, tmp_path: Path) -> None:
    from flows.cli import app

    runner = CliRunner()
    out = tmp_path / "calls.jsonl"
    result = runner.invoke(app, ["export", runs.prompted, "--datasets", str(runs.root), "--format", "openai-chat", "--calls", "--out", str(out)])
    assert result.exit_code == 0, result.output
    calls = {c["key"]: c for c in calls_of(runs.root, runs.prompted)}
    assert f"{len(calls)} conversations" in result.output
    text = out.read_text(encoding="utf-8")
    assert SECRET not in text
    loaded = hf.load_dataset("json", data_files=str(out), split="train", cache_dir=str(tmp_path / "hf"))
    assert loaded.num_rows == len(calls) and loaded.column_names == ["messages"]
    pairs = sorted((json.dumps(row["messages"][:-1]), row["messages"][-1]["content"]) for row in loaded)
    expected = sorted((json.dumps(json.loads(c["messages"])), c["completion"]) for c in calls.values())
    assert pairs == expected  # the exact prompt, then the exact completion as the assistant
    assert all(row["messages"][-1]["role"] == "assistant" for row in loaded)

    table = tmp_path / "calls.parquet"
    result = runner.invoke(app, ["export", runs.prompted, "-d", str(runs.root), "-f", "parquet", "--calls", "-o", str(table)])
    assert result.exit_code == 0, result.output
    rows = hf.load_dataset("parquet", data_files=str(table), split="train", cache_dir=str(tmp_path / "hf2"))
    assert sorted(rows["call_key"]) == sorted(calls) and set(rows["run_id"]) == {runs.prompted}
    assert sorted(rows["purpose"]) == sorted(c["purpose"] for c in calls.values())
    assert all(r["id"] == f"{runs.prompted}/{r['call_key']}" for r in rows)


def test_calls_export_of_a_run_without_prompts_is_one_line_and_exit_2(runs: Runs, tmp_path: Path) -> None:
    from flows.cli import app

    out = tmp_path / "calls.jsonl"
    result = CliRunner().invoke(app, ["export", runs.plain, "-d", str(runs.root), "-f", "openai-chat", "--calls", "-o", str(out)])
    assert result.exit_code == 2
    assert "datasets.store_prompts=true" in result.output and len(result.output.strip().splitlines()) == 1
    assert not out.exists()


def test_a_json_mode_schema_instruction_joins_the_message_before_it() -> None:
    from troupe.export.calls import call_conversations
    from troupe.export.formats import validate

    request = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}, {"role": "system", "content": "Reply in JSON."}]
    rows = [
        {"key": "k1", "purpose": "extract:Ana", "messages": json.dumps(request), "completion": '{"a": 1}'},
        {"key": "k1", "purpose": "extract:Ana", "messages": json.dumps(request), "completion": '{"a": 1}'},  # a cache hit
        {"key": "k2", "purpose": "act:Ana", "messages": json.dumps(request[:2]), "completion": "  "},  # blank: nothing to learn
    ]
    (only,) = call_conversations("r", rows)
    assert [(m.role, m.content) for m in only.messages] == [
        ("system", "S"), ("user", "U\n\nReply in JSON."), ("assistant", '{"a": 1}'),
    ]
    validate(only)
