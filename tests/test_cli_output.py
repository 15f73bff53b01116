"""What ``troupe runs`` and ``troupe sql`` print in a real terminal width (the ``COLUMNS`` a shell sets):
the run id is never cut, and intervals, plain or nested, print as text in tables and CSV.

The commands run as subprocesses (``python -m flows.cli``), so rich sizes its tables from
``COLUMNS`` as it does for a user, over runs rows written with the datasets' own writer.
"""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from troupe.datasets import write_partition
from troupe.datasets.rows import runs_table

REPO = Path(__file__).resolve().parent.parent
RUN_IDS = ("20261201-150945-b6b3ac", "20261201-160012-0f9e2d")
STARTED = datetime(2026, 12, 1, 15, 9, 45, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two runs whose other columns are wide enough that a narrow table must shrink them."""
    root = tmp_path_factory.mktemp("cli-output")
    for i, run_id in enumerate(RUN_IDS):
        row = {
            "scenario": "a-scenario-with-a-rather-long-name", "status": "completed_with_failures",
            "started": STARTED + timedelta(hours=i), "finished": STARTED + timedelta(hours=i, minutes=90, seconds=5),
            "model": "gpt-4o-mini-2024-07-18", "calls": 12345, "cache_hits": 678, "prompt_tokens": 1234567,
            "completion_tokens": 89012, "cost_usd": 1.23456,
        }
        write_partition(root, "runs", run_id, runs_table(row))
    return root


def troupe(root: Path, columns: int, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": str(columns)}
    env.pop("TERM", None)
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args, "--datasets", str(root)],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=60,
    )


@pytest.mark.parametrize("columns", [80, 90, 100])
def test_runs_prints_whole_run_ids_at_80_to_100_columns(root: Path, columns: int) -> None:
    result = troupe(root, columns, "runs")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= columns  # the table did have to shrink to fit
    assert "…" in result.stdout
    found = re.findall(r"^│ (\S+) +│", result.stdout, re.M)
    assert found == [RUN_IDS[1], RUN_IDS[0]], result.stdout  # newest first, each whole, on one line


def test_intervals_computed_from_runs_print_as_text_in_tables_and_csv(root: Path) -> None:
    query = "SELECT run_id, finished - started AS took, [finished - started] AS tooks FROM runs ORDER BY run_id"
    table = troupe(root, 100, "sql", query)
    assert table.returncode == 0, table.stderr
    assert "MonthDayNano" not in table.stdout
    # a list of intervals is DuckDB's text of the list, which quotes the times
    assert re.findall(r"│ (\S+) +│ (01:30:05) +│ (\['01:30:05'\]) +│", table.stdout) == [(r, "01:30:05", "['01:30:05']") for r in RUN_IDS]
    as_csv = troupe(root, 100, "sql", query, "--format", "csv")
    assert as_csv.returncode == 0, as_csv.stderr
    assert list(csv.reader(io.StringIO(as_csv.stdout))) == [["run_id", "took", "tooks"], *([r, "01:30:05", "['01:30:05']"] for r in RUN_IDS)]


def test_intervals_nested_in_structs_and_maps_print_as_text_and_csv_writes_lists(root: Path) -> None:
    query = "SELECT {'wait': INTERVAL 2 HOUR} AS s, MAP {'x': INTERVAL 1 MONTH} AS m, [INTERVAL 1 DAY, NULL] AS l, [1, 2] AS n"
    as_csv = troupe(root, 100, "sql", query, "-f", "csv")
    assert as_csv.returncode == 0, as_csv.stderr
    assert list(csv.reader(io.StringIO(as_csv.stdout))) == [["s", "m", "l", "n"], ["{'wait': '02:00:00'}", "{x=1 month}", "[1 day, NULL]", "[1, 2]"]]
    table = troupe(root, 100, "sql", query)
    assert table.returncode == 0 and "MonthDayNano" not in table.stdout
    assert "[1 day, NULL]" in table.stdout and "[1, 2]" in table.stdout
