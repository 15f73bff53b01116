"""A non-editable install carries prompts/ and the default config.ini inside the package."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_ships_prompts_and_config(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path / "dist"), str(ROOT)],
        check=True, capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("troupe-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for template in (ROOT / "prompts").glob("*.j2"):
        assert f"troupe/_data/prompts/{template.name}" in names
    assert "troupe/_data/config.ini" in names
    assert "troupe/examples/agents/Lisa.agent.json" in names
    assert "troupe/examples/scenarios/demo.yaml" in names
    assert {"tasks/options.py", "flows/cli.py"} <= set(names)

    installed = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(installed)
    probe = (
        "import troupe, troupe.resources as r, troupe.prompts as p\n"
        "from troupe.config import load_config\n"
        "assert troupe.__file__.startswith(r'%s'), troupe.__file__\n"
        "assert str(r.data_path('prompts')).startswith(r'%s')\n"
        "print(load_config().llm.api_type, len(p.render('consolidate_system', name='Ana')) > 0)\n"
    ) % (installed, installed / "troupe" / "_data")
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(installed)},
    )
    assert out.stdout.strip() == "local True"
