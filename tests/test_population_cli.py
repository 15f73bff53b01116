"""``troupe population SPEC --size N`` and ``troupe show-population RUN_ID`` against the fake server and a real Prefect server."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import pytest
import yaml
from typer.testing import CliRunner

import flows.cli as cli
from flows.cli import app
from tests.fake_openai import FakeOpenAI
from tests.test_factory import SPEC, consistent
from troupe.datasets import connect
from troupe.population import parse_spec

runner = CliRunner()


@pytest.fixture(autouse=True)
def _wide_and_drained(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(cli.out, "width", 200)
    yield
    if "prefect_server" in request.fixturenames:
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=10)


def llm(fake: FakeOpenAI) -> list[str]:
    return ["--set", "llm.api_type=openai", "--set", f"llm.base_url={fake.url}", "--set", "llm.model=fake-model"]


def _rows(output: str) -> dict[tuple[str, str], tuple[float, int, int]]:
    """(dimension, category) -> (target, sampled, achieved), read from the printed tables."""
    found: dict[tuple[str, str], tuple[float, int, int]] = {}
    dimension = ""
    for line in output.splitlines():
        title = re.match(r"^\s*(\w+) \(max \|sampled - target\| = ", line)
        if title:
            dimension = title[1]
        cells = [c.strip() for c in line.strip("│┃ ").split("│")]
        if dimension and len(cells) == 4 and re.fullmatch(r"\d+\.\d", cells[1]):
            found[(dimension, cells[0])] = (float(cells[1]), int(cells[2]), int(cells[3]))
    return found


def test_population_prints_target_vs_achieved_and_show_population_prints_it_again(
    prefect_server: str, fake: FakeOpenAI, tmp_path: Path
) -> None:
    fake.responder = consistent
    spec = tmp_path / "townsfolk.yaml"
    spec.write_text(yaml.safe_dump(SPEC), encoding="utf-8")
    root = tmp_path / "datasets"
    result = runner.invoke(app, ["population", str(spec), "--size", "24", "--seed", "4", "--datasets", str(root), "--run-id", "p1", "-q", *llm(fake)])
    assert result.exit_code == 0, result.output
    printed = _rows(result.output)
    targets = parse_spec(SPEC).targets(24)
    assert set(printed) == {(d, c) for d, shares in targets.items() for c in shares}
    assert all(abs(printed[(d, c)][0] - t) < 0.06 and abs(printed[(d, c)][1] - t) <= 1 for d, s in targets.items() for c, t in s.items())
    assert "24 people; near-duplicates found 0 (0.0%)" in result.output
    assert fake.calls == 24
    connection = connect(root)
    try:
        assert connection.sql("SELECT count(*), count(sampled) FROM personas WHERE run_id = 'p1'").fetchall() == [(24, 24)]
    finally:
        connection.close()

    shown = runner.invoke(app, ["show-population", "p1", "--datasets", str(root)])
    assert shown.exit_code == 0 and _rows(shown.output) == printed and "24 people;" in shown.output


def test_bad_population_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["population", str(tmp_path / "none.yaml"), "--size", "5", "--datasets", str(tmp_path)])
    assert missing.exit_code == 2 and "none.yaml: no such population spec file" in missing.output
    assert not (tmp_path / "personas").exists()
    none = runner.invoke(app, ["show-population", "nope", "--datasets", str(tmp_path)])
    assert none.exit_code == 2 and "run nope: no population profile" in none.output
    zero = runner.invoke(app, ["population", str(tmp_path / "none.yaml"), "--size", "0"])
    assert zero.exit_code == 2
