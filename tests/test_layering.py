"""The layers: troupe/ never imports Prefect (flows -> tasks -> troupe), and importing troupe is cheap."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_no_module_in_troupe_imports_prefect_tasks_or_flows() -> None:
    offenders = []
    for path in (ROOT / "troupe").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in ("prefect", "tasks", "flows")]
    assert offenders == []


def test_using_the_library_loads_no_prefect() -> None:
    probe = (
        "import sys\n"
        "import troupe\n"
        "assert 'openai' not in sys.modules, 'import troupe alone stays light'\n"
        "from troupe import TinyPerson, TinyWorld, TinySocialNetwork\n"
        "from troupe.datasets import connect\n"
        "from troupe.scenario import load_scenario\n"
        "from troupe.simulation import run_step\n"
        "import flows.cli\n"
        "assert 'prefect' not in sys.modules, sorted(m for m in sys.modules if m.startswith('prefect'))[:5]\n"
    )
    subprocess.run([sys.executable, "-c", probe], check=True, cwd=ROOT)
