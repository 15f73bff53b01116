"""Population figures: a sampled population of --size people written against a slow fake server.

    python -m bench.population [--size 2000] [--latency 0.3] [--slots 64] [--planted 0.05] [--seed 0]

Samples --size people from a three-dimension spec (age bands, gender, region conditional on
age), writes them with TinyPersonFactory against the fake OpenAI-compatible server (in a process
of its own) with --latency seconds per call and --slots concurrent slots, the gateway's
max_concurrency = --slots. The fake writes each person around the attributes in the prompt; a
--planted share of first drafts copy the previous person's text (near-duplicates the factory must
find and rewrite). Prints the wall time against the ideal (ceil(calls / slots) x latency, for the
first drafts and for the rewrites as a second dependent round), the calls, the near-duplicate
rate found and left, how far each marginal is from its target, and the same for a rerun (warm
call cache).
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from tests.fake_process import FakeOpenAIProcess
from tests.test_factory import SPEC, _prompt, _schema_name, attributes, person_number, persona_reply


class Writer:
    """The fake LLM: a distinct person around the given attributes; every n-th first draft copies its predecessor."""

    def __init__(self, every: int) -> None:
        self.every = every

    def __call__(self, body: dict[str, Any]) -> dict[str, Any] | None:
        if _schema_name(body) != "PersonaDraft":
            return None
        number = person_number(body)
        planted = self.every and number % self.every == 0 and "too close to people" not in _prompt(body)
        return persona_reply(number, attributes(body), flavour=number - 1 if planted else None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--slots", type=int, default=64)
    parser.add_argument("--planted", type=float, default=0.05, help="share of first drafts that copy another person")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from tests.conftest import fake_config
    from troupe.factory import TinyPersonFactory
    from troupe.llm import LLMGateway
    from troupe.population import parse_spec, sample_population

    spec = parse_spec(SPEC)
    started = time.perf_counter()
    sample_population(spec, args.size, args.seed)
    sampling_cold_s = time.perf_counter() - started  # includes importing scipy.optimize
    started = time.perf_counter()
    sample_population(spec, args.size, args.seed + 1)
    sampling_s = time.perf_counter() - started

    every = round(1 / args.planted) if args.planted > 0 else 0
    rows = []
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAIProcess(latency_s=args.latency, slots=args.slots, responder=Writer(every)) as fake:
        server = type("Server", (), {"url": fake.url})()
        config = fake_config(server, Path(tmp), **{"llm.max_concurrency": str(args.slots), "llm.timeout_s": 60})
        for label in ("first run", "rerun"):
            fake.reset()
            gateway = LLMGateway(config)
            factory = TinyPersonFactory(spec=spec, population_size=args.size, seed=args.seed, gateway=gateway)
            started = time.perf_counter()
            factory.generate_people()
            wall = time.perf_counter() - started
            started = time.perf_counter()
            report = factory.profile()
            profile_s = time.perf_counter() - started
            stats = fake.stats()
            rewrites = stats["calls"] - args.size if stats["calls"] else 0
            ideal = (math.ceil(args.size / args.slots) + math.ceil(rewrites / args.slots)) * args.latency if stats["calls"] else 0.0
            deviation = max(d.max_deviation for d in report.dimensions)
            if label == "first run":
                from troupe.factory import diversity

                diversity._minhash.cache_clear()
                texts = [diversity.persona_text(row.persona) for row in factory.generated]
                started = time.perf_counter()
                diversity.near_duplicates(texts, 0.8)
                minhash_s = time.perf_counter() - started
            rows.append((label, stats["calls"], wall, ideal, stats["peak_concurrency"], report, deviation, profile_s))

    console = Console()
    table = Table(title=f"{args.size} people, 3 dimensions; {args.latency:g} s latency, {args.slots} slots, {args.planted:.0%} planted near-duplicates")
    for column in ("run", "LLM calls", "wall s", "ideal s", "wall / ideal", "peak", "near-dup found", "near-dup left", "max |sampled - target|", "profile s"):
        table.add_column(column, justify="right")
    for label, calls, wall, ideal, peak, report, deviation, profile_s in rows:
        table.add_row(
            label, str(calls), f"{wall:.2f}", f"{ideal:.2f}", f"{wall / ideal:.2f}" if ideal else "-", str(peak),
            f"{report.rewritten_near_duplicates} ({report.near_duplicate_rate:.1%})",
            f"{report.residual_near_duplicates} ({report.residual_near_duplicate_rate:.1%})",
            f"{deviation:.2f}", f"{profile_s:.2f}",
        )
    console.print(table)
    console.print(f"sampling {args.size} people in code: {sampling_s * 1000:.0f} ms ({sampling_cold_s * 1000:.0f} ms the first time, importing scipy)")
    console.print(rows[0][5].summary())
    console.print(f"near-duplicate check of all {args.size} people from scratch (MinHash + LSH): {minhash_s:.2f} s")
    console.print(f"load average at the end (1 min, {os.cpu_count()} CPUs): {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
