"""What the portable llama.cpp build costs against a native one, on a machine where both run.

    python -m bench.portable_build --other-site DIR [--label native] [--repeats 3]

The README installs llama.cpp with GGML_NATIVE=OFF and AVX2 as the ceiling, so the same build runs
on an AVX2-only machine and on one with AVX-512 and AMX. To see what that trades, build the other
variant into a directory of its own and point --other-site at it, e.g. for a native build:

    CMAKE_ARGS="-DLLAVA_BUILD=OFF" pip wheel --no-deps --no-cache-dir llama-cpp-python==0.3.36 -w /tmp/native
    pip install --no-deps --target /tmp/native/site /tmp/native/llama_cpp_python-*.whl

Each build serves the embedded SmolLM2 weights on a free port in turn (same threads, same context),
and the bench measures, greedy and with no cache: prompt tokens/s (a long prompt, one output
token) and decode tokens/s (a short prompt, a fixed-length answer), best of --repeats. Both servers
stay up but only one request runs at a time, alternating between them, so they never compete for
the cores and a change in the machine's load affects both alike.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import openai

from tests.conftest import free_port
from troupe.config import LocalModelConfig
from troupe.local_model import MODEL_ALIAS, weights_path

LONG_PROMPT = " ".join(["The baker opened the shop at six and sold bread, croissants and coffee to the people of the town."] * 30)
DECODE_TOKENS = 128


def _start(site: str | None, port: int, threads: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as troupe starts its server: spinning threads starve each other
    if site:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [site, env.get("PYTHONPATH", "")]))
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(weights_path(LocalModelConfig())),
        "--model_alias", MODEL_ALIAS, "--host", "127.0.0.1", "--port", str(port),
        "--n_threads", str(threads), "--n_ctx", "4096",
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=1):
                return process
        except OSError:
            if process.poll() is not None:
                raise SystemExit(f"the server from {site or 'the installed build'} exited with code {process.returncode}")
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the server did not answer within 120 s")


def _measure_once(client: openai.OpenAI, i: int) -> tuple[float, float]:
    # A different first word each time, so llama.cpp's prompt cache does not skip the prompt.
    messages = [{"role": "user", "content": f"Run {i}. {LONG_PROMPT}"}]
    started = time.perf_counter()
    usage = client.chat.completions.create(model=MODEL_ALIAS, messages=messages, max_tokens=1, temperature=0).usage
    prompt_tps = usage.prompt_tokens / (time.perf_counter() - started)
    story = [{"role": "user", "content": f"Story {i}: write a long story about a baker."}]
    started = time.perf_counter()
    reply = client.chat.completions.create(model=MODEL_ALIAS, messages=story, max_tokens=DECODE_TOKENS, temperature=0)
    return prompt_tps, reply.usage.completion_tokens / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--other-site", required=True, help="a directory holding another build's llama_cpp package")
    parser.add_argument("--label", default="native")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if not (Path(args.other_site) / "llama_cpp").is_dir():
        raise SystemExit(f"--other-site {args.other_site}: no llama_cpp package there; see this module's docstring")
    builds = {"installed (portable)": None, args.label: args.other_site}
    ports = {label: free_port() for label in builds}
    processes = [_start(site, ports[label], args.threads) for label, site in builds.items()]
    try:
        clients = {label: openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="local", timeout=600) for label, port in ports.items()}
        results = {label: (0.0, 0.0) for label in builds}
        # Alternate the builds, one request at a time, so a change in the machine's load hits both alike.
        for i in range(args.repeats):
            for label, client in clients.items():
                prompt_tps, decode_tps = _measure_once(client, i)
                best = results[label]
                results[label] = (max(best[0], prompt_tps), max(best[1], decode_tps))
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)
    load = os.getloadavg()[0]
    (base_prompt, base_decode), (other_prompt, other_decode) = results.values()
    for label, (p, d) in results.items():
        print(f"{label:>22}: prompt {p:7.1f} tok/s   decode {d:6.1f} tok/s")
    print(f"portable / {args.label}: prompt {base_prompt / other_prompt:.2f}x, decode {base_decode / other_decode:.2f}x "
          f"(1-minute load {load:.2f}, {args.threads} threads)")


if __name__ == "__main__":
    main()
