"""Gateway figures: call-cache lookup overhead, and concurrency against a slow server.

    python -m bench.gateway [--calls 256] [--concurrency 64] [--latency 0.3] [--lookups 2000]

Prints, from one run: the cost of one cache lookup in troupe's FileCallCache and in the
Prefect-backed PrefectCallCache, the whole gateway path for a cached call, and, for `--calls`
distinct calls at `--latency` seconds each through a limiter of `--concurrency`, the wall time
against the ideal ceil(calls / concurrency) x latency and the peak concurrency the server saw.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tests.conftest import fake_config
from tests.fake_openai import FakeOpenAI
from tests.fake_process import FakeOpenAIProcess
from troupe.cache import FileCallCache, cache_key
from troupe.llm import LLMGateway

RECORD = {"text": '{"actions": []}' * 20, "finish_reason": "stop", "usage": {"prompt_tokens": 900, "completion_tokens": 120}, "model": "m"}


def per_call_ms(fn, n: int) -> float:
    started = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - started) / n * 1000


def lookups(n: int, root: Path) -> dict[str, float]:
    from tasks.call_cache import PrefectCallCache

    keys = [cache_key({"i": i}) for i in range(n)]
    results: dict[str, float] = {}
    for name, cache in (("FileCallCache", FileCallCache(root / "file")), ("PrefectCallCache", PrefectCallCache(root / "prefect"))):
        for key in keys:
            cache.put(key, RECORD)
        results[f"{name} hit"] = per_call_ms(lambda i: cache.get(keys[i]), n)
        results[f"{name} miss"] = per_call_ms(lambda i: cache.get("0" + keys[i][1:] + "x"), n)
    return results


def gateway_hit(server: FakeOpenAI, root: Path, n: int) -> float:
    gateway = LLMGateway(fake_config(server, root))
    messages = [{"role": "user", "content": "cached question"}]
    gateway.complete(messages)
    return per_call_ms(lambda i: gateway.complete(messages), n)


def concurrency(root: Path, calls: int, limit: int, latency: float) -> tuple[float, float, int]:
    """Calls through the gateway against a fake server in its own process (so it does not share our GIL)."""
    with FakeOpenAIProcess(latency_s=latency) as server:
        gateway = LLMGateway(fake_config(server, root, **{"llm.max_concurrency": limit, "cache.enabled": "false"}))

        async def run(prefix: str) -> None:
            await asyncio.gather(*(gateway.acomplete([{"role": "user", "content": f"{prefix} {i}"}]) for i in range(calls)))

        asyncio.run(run("warm-up"))  # opens the connections once, as a long-running process would have
        server.reset()
        started = time.perf_counter()
        asyncio.run(run("question"))
        wall = time.perf_counter() - started
        peak = server.stats()["peak_concurrency"]
    return wall, math.ceil(calls / limit) * latency, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=256)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--lookups", type=int, default=2000)
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAI() as server:
        root = Path(tmp)
        figures = lookups(args.lookups, root)
        figures["gateway.complete() cached (whole path)"] = gateway_hit(server, root / "gw", args.lookups)
        wall, ideal, peak = concurrency(root / "cc", args.calls, args.concurrency, args.latency)

    table = Table(title="Call-cache lookup (ms per call)")
    table.add_column("path")
    table.add_column("ms", justify="right")
    table.add_column("x FileCallCache hit", justify="right")
    base = figures["FileCallCache hit"]
    for name, ms in figures.items():
        table.add_row(name, f"{ms:.4f}", f"{ms / base:.1f}")
    console.print(table)
    table = Table(title=f"{args.calls} calls at {args.latency:g} s latency, max_concurrency {args.concurrency}")
    for column in ("wall s", "ideal s", "wall / ideal", "peak concurrency at server"):
        table.add_column(column, justify="right")
    table.add_row(f"{wall:.2f}", f"{ideal:.2f}", f"{wall / ideal:.2f}", str(peak))
    console.print(table)


if __name__ == "__main__":
    main()
