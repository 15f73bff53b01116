"""What a local Ray instance costs a run before and after its shards: start, first tasks, shut-down.

    python -m bench.ray_startup            # 3 rounds, 2 CPUs (troupe's default cluster_workers)
    python -m bench.ray_startup --cpus 4 --rounds 1

Each round, in this process: ``import ray``; ``ray.init`` of a local instance as
``[pipeline] runner = ray`` starts it (flows/ray_runner.py: ``num_cpus``, no dashboard); one task
per CPU that imports troupe's flows, as each worker process does before its first shard; then
``ray.shutdown``. Needs the ray extra.
"""

from __future__ import annotations

import argparse
import logging
import os
import time

import ray


@ray.remote
def import_flows() -> int:
    import flows.stages  # noqa: F401 - what a shard task's worker process loads first

    return os.getpid()


def one_round(cpus: int) -> dict[str, float]:
    started = time.perf_counter()
    ray.init(num_cpus=cpus, include_dashboard=False, logging_level=logging.WARNING)
    initialised = time.perf_counter()
    pids = ray.get([import_flows.remote() for _ in range(cpus)])
    warmed = time.perf_counter()
    ray.shutdown()
    stopped = time.perf_counter()
    return {
        "init": initialised - started, "first tasks": warmed - initialised, "shutdown": stopped - warmed,
        "total": stopped - started, "worker processes": len(set(pids)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"load: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min)")
    for i in range(args.rounds):
        figures = one_round(args.cpus)
        print(
            f"round {i + 1}: ray.init {figures['init']:.1f} s, {args.cpus} first tasks importing troupe's flows "
            f"{figures['first tasks']:.1f} s ({figures['worker processes']:.0f} worker processes), "
            f"ray.shutdown {figures['shutdown']:.1f} s, total {figures['total']:.1f} s"
        )
    print(f"load after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
