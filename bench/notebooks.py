"""The seed notebooks in examples/ executed top to bottom on the configured model (the embedded one by default), timed.

    nice -n 10 python -m bench.notebooks customer_interview [--out DIR] [--port 8779] [--set SIZE=5]

Jupyter is not a dependency, so each code cell is executed in one namespace as a kernel would,
and the value of its last expression is printed as the notebook would show it: what a user sees.
The run happens in a fresh working directory with an empty call cache (every call is live), with
``populations/`` copied beside it as it sits beside the notebook. ``--set NAME=VALUE`` makes a
cell's top-level ``NAME = ...`` assign VALUE instead (a size knob such as the ad evaluation's ``SIZE``).
The embedded model server is started on ``--port`` (not the default one, so that a server someone
else started is not shared). Prints each cell's seconds, the wall time and the 1-minute load
average (sampled every 5 s), and writes the transcript and a JSON summary to ``--out``.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import json
import os
import shutil
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def cells(name: str) -> list[str]:
    notebook = json.loads((EXAMPLES / f"{name}.ipynb").read_text(encoding="utf-8"))
    return ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]


def run_cell(source: str, namespace: dict[str, Any], overrides: dict[str, Any]) -> Any:
    """Execute a cell; return the value of its last expression (None when it ends in a statement), as Jupyter shows it.

    A top-level ``NAME = ...`` whose NAME is in overrides assigns the override instead.
    """
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and getattr(node.targets[0], "id", None) in overrides:
            node.value = ast.copy_location(ast.Constant(overrides[node.targets[0].id]), node.value)  # type: ignore[union-attr]
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, "<cell>", "exec"), namespace)
    return eval(compile(ast.Expression(last.value), "<cell>", "eval"), namespace) if last else None


class LoadSampler(threading.Thread):
    """The 1-minute load average every few seconds while the notebook runs."""

    def __init__(self, every_s: float = 5.0) -> None:
        super().__init__(daemon=True)
        self.every_s, self.samples, self.stopped = every_s, [os.getloadavg()[0]], threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.every_s):
            self.samples.append(os.getloadavg()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(p.stem for p in EXAMPLES.glob("*.ipynb")))
    parser.add_argument("--out", type=Path, default=Path("bench-notebooks"))
    parser.add_argument("--port", type=int, default=8779)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()
    overrides = {k: ast.literal_eval(v) for k, v in (o.split("=", 1) for o in args.overrides)}
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"nb-{args.name}-"))
    shutil.copytree(EXAMPLES / "populations", work / "populations")
    os.environ.update({"TROUPE_CACHE__DIR": str(work / "cache"), "TROUPE_DATASETS__ROOT": str(work / "datasets"),
                       "TROUPE_LOCAL__PORT": str(args.port)})
    os.chdir(work)
    transcript, timings, error = io.StringIO(), [], None
    sampler = LoadSampler()
    sampler.start()
    started = time.perf_counter()
    namespace: dict[str, Any] = {"__name__": "__main__"}
    for number, source in enumerate(cells(args.name), start=1):
        cell_started = time.perf_counter()
        output = io.StringIO()
        try:
            with contextlib.redirect_stdout(output):
                value = run_cell(source, namespace, overrides)
                if value is not None:
                    print(repr(value))
        except Exception:  # the notebook stops here, as Jupyter's "run all" does
            error = traceback.format_exc()
            output.write(error)
        seconds = time.perf_counter() - cell_started
        timings.append(round(seconds, 1))
        block = f"----- [{number}] {seconds:.1f} s\n{source}\n----- out\n{output.getvalue()}\n"
        print(block, flush=True)
        transcript.write(block)
        if error:
            break
    wall = time.perf_counter() - started
    sampler.stopped.set()
    load = sampler.samples
    summary = {"notebook": args.name, "overrides": overrides, "finished": error is None, "wall_s": round(wall, 1),
               "cells_s": timings, "load_1min_mean": round(sum(load) / len(load), 2), "load_1min_max": round(max(load), 2),
               "error": error.strip().splitlines()[-1] if error else None}
    (args.out / f"{args.name}.txt").write_text(transcript.getvalue(), encoding="utf-8")
    (args.out / f"{args.name}.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(summary), flush=True)
    raise SystemExit(0 if error is None else 1)


if __name__ == "__main__":
    main()
