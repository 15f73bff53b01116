"""The notebooks in examples/ run top to bottom against the fake server and give what they say they give.

No Jupyter: each notebook's code cells are joined into one script and run by a fresh Python in a
temporary working directory. The notebooks choose their model with ``load_config``, which reads
``TROUPE_<SECTION>__<KEY>`` variables, so the subprocess's environment points them at the fake
server; the notebooks hold nothing for the tests. A short epilogue the test appends writes the
variables each notebook ends with to ``result.json``, which the test then checks.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.fake_openai import FakeOpenAI
from tests.scripted import user_text
from tests.test_examples import ADS, EXAMPLES, Talk, _FocusGroup, _Interview
from tests.test_factory import consistent

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ["customer_interview", "product_brainstorming", "synthetic_conversations", "tv_ad_evaluation"]


def code_of(name: str) -> str:
    """The notebook's code cells, in order, as one script (after checking it is a clean nbformat 4 file)."""
    notebook = json.loads((EXAMPLES / f"{name}.ipynb").read_text(encoding="utf-8"))
    assert notebook["nbformat"] == 4
    cells = notebook["cells"]
    assert cells[0]["cell_type"] == "markdown" and any(c["cell_type"] == "markdown" for c in cells[1:])
    code = [c for c in cells if c["cell_type"] == "code"]
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code), "outputs are stored"
    assert "set_default_gateway" in "".join(code[0]["source"])  # the first code cell chooses the model
    return "\n\n".join("".join(c["source"]) for c in code)


def environment(fake: FakeOpenAI, work: Path) -> dict[str, str]:
    """This process's environment with troupe pointed at the fake server (and no key for any other model)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TROUPE_") and k not in ("OPENAI_API_KEY", "AZURE_OPENAI_KEY", "AZURE_OPENAI_ENDPOINT")}
    env.update({
        "TROUPE_LLM__API_TYPE": "openai", "TROUPE_LLM__BASE_URL": fake.url, "TROUPE_LLM__MODEL": "fake-model",
        "TROUPE_LLM__TIMEOUT_S": "10", "TROUPE_CACHE__DIR": str(work / "cache"),
        "TROUPE_DATASETS__ROOT": str(work / "datasets"), "TROUPE_SIMULATION__TRANSCRIPT": "false",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
    })
    return env


def run_notebook(name: str, fake: FakeOpenAI, work: Path, epilogue: str) -> dict[str, Any]:
    """Run the notebook's code in a fresh interpreter in work; return what the epilogue wrote."""
    shutil.copytree(EXAMPLES / "populations", work / "populations")  # files the notebooks find beside them
    script = work / f"{name}.py"
    script.write_text(code_of(name) + "\n\n# ----- test epilogue -----\nimport json as _json\n" + epilogue, encoding="utf-8")
    env = environment(fake, work)
    done = subprocess.run([sys.executable, str(script)], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    assert fake.calls > 0  # it talked to the fake server, not to another model
    return json.loads((work / "result.json").read_text(encoding="utf-8"))


def test_customer_interview(fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.responder = _Interview("answer")
    result = run_notebook("customer_interview", fake, tmp_path, """
_json.dump({"banker": banker.name, "role": factory.generated[0].sampled["role"], "record": record,
            "talkers": sorted({e.agent for e in world.state.events if e.type == "TALK" and e.direction == "action"})},
           open("result.json", "w"), default=str)
""")
    assert result["role"] in {"branch manager", "small-business loan officer", "head of digital channels"}
    assert result["talkers"] == sorted([result["banker"], "Dana Whitfield"])  # both spoke
    record = result["record"]
    assert record["needs"] == ["faster checks", "fewer missing documents"] and record["willingness_to_buy"] == "likely"
    saved = json.loads((tmp_path / "customer_interview.json").read_text(encoding="utf-8"))
    assert "likely" in json.dumps(saved)


def test_tv_ad_evaluation(fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.responder = consistent  # people around their attributes; the fake's schema-valid answers for the survey
    result = run_notebook("tv_ad_evaluation", fake, tmp_path, """
_json.dump({"size": SIZE, "answers": answers.to_dicts(), "shares": shares.to_dicts(), "by_age": shares_by_age.to_dicts(),
            "bands": bands.to_dicts()}, open("result.json", "w"), default=str)
""")
    size = result["size"]
    assert 5 <= size <= 20  # small enough for the embedded model (docs/examples.md)
    picks = [a for a in result["answers"] if a["question_id"] == "ad"]
    assert len(picks) == size and {a["answer"] for a in picks} <= ADS  # un-blinded in the rows
    survey_prompts = [b for b in fake.requests if "Sunrise Oats" in user_text(b)]
    assert len(survey_prompts) == size
    assert all(not ADS & set(re.findall(r"\w+", user_text(b))) for b in survey_prompts)  # blind: A, B, C only
    assert len({tuple(re.findall(r"([ABC]) = A (\w+)", user_text(b))) for b in survey_prompts}) > 1  # orders differ
    shares = result["shares"]
    assert shares and sum(row["n"] for row in shares) == size and {row["answer"] for row in shares} <= ADS
    assert all(row["ci_low"] <= row["share"] <= row["ci_high"] and row["respondents"] == size for row in shares)
    by_age = result["by_age"]
    assert {row["age_band"] for row in by_age} == {row["age_band"] for row in result["bands"]}
    assert sum(row["n"] for row in by_age) == size


def test_product_brainstorming(fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.responder = _FocusGroup("idea")
    result = run_notebook("product_brainstorming", fake, tmp_path, """
_json.dump({"ideas": ideas.to_dicts(), "by_category": ideas_by_category.to_dicts(), "categories": normalizer.categories},
           open("result.json", "w"), default=str)
""")
    ideas = result["ideas"]
    assert [(i["title"], i["proposed_by"], i["support_count"]) for i in ideas[:2]] == [
        ("Lisa Carter's idea", "Lisa Carter", 2), ("Oscar's idea", "Oscar", 1)]
    assert sorted(i["support_count"] for i in ideas[2:]) == [0, 0]
    assert all(i["category"] in result["categories"] for i in ideas) and 1 <= len(result["categories"]) <= 5
    assert sum(row["ideas"] for row in result["by_category"]) == 4
    assert len(json.loads((tmp_path / "ideas.json").read_text(encoding="utf-8"))) == 4


def test_synthetic_conversations(fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.responder = Talk("line")
    result = run_notebook("synthetic_conversations", fake, tmp_path, """
_json.dump({"conversations": conversations.to_dicts(), "written": written}, open("result.json", "w"))
""")
    conversations = result["conversations"]
    assert len(conversations) == 6 and all(c["utterances"] == 4 and c["speakers"] == 2 for c in conversations)
    chats = [json.loads(line) for line in (tmp_path / "chats.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(chats) == result["written"] == 12  # each person's view of each conversation
    for chat in chats:
        roles = [m["role"] for m in chat["messages"]]
        assert roles[0] == "system" and "assistant" in roles and "user" in roles


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_clean(name: str) -> None:
    """Valid nbformat 4 without outputs; nothing in it points at a test server."""
    code = code_of(name)
    assert "127.0.0.1" not in code and "fake" not in code.lower()


def test_the_timing_command_runs_a_notebook_as_jupyter_shows_it_with_its_size_knob(fake: FakeOpenAI, tmp_path: Path) -> None:
    """``python -m bench.notebooks`` (the figures in docs/examples.md): every cell, its last value shown, SIZE overridden."""
    fake.responder = consistent
    out = tmp_path / "timings"
    done = subprocess.run(
        [sys.executable, "-m", "bench.notebooks", "tv_ad_evaluation", "--out", str(out), "--set", "SIZE=12"],
        cwd=ROOT, env=environment(fake, tmp_path), capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    summary = json.loads((out / "tv_ad_evaluation.json").read_text(encoding="utf-8"))
    cells = json.loads((EXAMPLES / "tv_ad_evaluation.ipynb").read_text(encoding="utf-8"))["cells"]
    assert summary["finished"] and summary["overrides"] == {"SIZE": 12}
    assert len(summary["cells_s"]) == sum(c["cell_type"] == "code" for c in cells) and summary["wall_s"] >= sum(summary["cells_s"]) - 1
    assert summary["load_1min_max"] >= summary["load_1min_mean"] >= 0
    assert len([b for b in fake.requests if "Sunrise Oats" in user_text(b)]) == 12  # the knob, not the notebook's 10
    shown = (out / "tv_ad_evaluation.txt").read_text(encoding="utf-8")
    assert "shape: (" in shown and "ci_low" in shown and "age_band" in shown  # the tables a user sees, as polars shows them
