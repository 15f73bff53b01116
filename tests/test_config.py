"""Configuration layers and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from troupe.config import api_key, load_config
from troupe.errors import ConfigError


def test_packaged_defaults(tmp_path: Path) -> None:
    config = load_config(cwd=tmp_path, environ={})
    assert config.llm.api_type == "local"
    assert config.cache.enabled is True
    assert config.datasets.root == "datasets"


def test_precedence_file_then_env_then_argument(tmp_path: Path) -> None:
    (tmp_path / "config.ini").write_text("[llm]\nmodel = from-file\ntemperature = 0.1\nmax_tokens = 99\n")
    env = {"TROUPE_LLM__MODEL": "from-env", "TROUPE_LLM__TEMPERATURE": "0.2"}
    config = load_config({"llm.model": "from-arg"}, cwd=tmp_path, environ=env)
    assert config.llm.model == "from-arg"
    assert config.llm.temperature == 0.2
    assert config.llm.max_tokens == 99
    assert config.llm.seed == 42  # packaged default survives


def test_with_overrides_validates(tmp_path: Path) -> None:
    config = load_config(cwd=tmp_path, environ={})
    assert config.with_overrides({"llm.max_concurrency": "3"}).llm.max_concurrency == 3
    with pytest.raises(ConfigError, match=r"argument llm\.max_concurrency: 'many' is not a valid int"):
        config.with_overrides({"llm.max_concurrency": "many"})


@pytest.mark.parametrize(
    ("ini", "message"),
    [
        ("[bogus]\nx = 1\n", r"config\.ini: unknown section \[bogus\]; known sections: llm, local"),
        ("[llm]\nmodle = x\n", r"config\.ini \[llm\] modle: unknown key; keys of \[llm\]: api_type"),
        ("[llm]\ntemperature = warm\n", r"config\.ini \[llm\] temperature: 'warm' is not a valid float"),
        ("[llm]\napi_type = bedrock\n", r"config\.ini \[llm\] api_type: 'bedrock' is not a valid Literal"),
        ("[cache]\nenabled = maybe\n", r"config\.ini \[cache\] enabled: 'maybe' is not a valid bool"),
        ("not an ini file\n", r"config\.ini: cannot parse"),
    ],
)
def test_file_errors_name_file_section_key_and_type(tmp_path: Path, ini: str, message: str) -> None:
    (tmp_path / "config.ini").write_text(ini)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(cwd=tmp_path, environ={})
    assert str(tmp_path / "config.ini") in str(info.value)
    assert "\n" not in str(info.value)


def test_env_errors_name_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"environment variable TROUPE_LLM__MAX_TOKENS: 'lots' is not a valid int"):
        load_config(cwd=tmp_path, environ={"TROUPE_LLM__MAX_TOKENS": "lots"})
    with pytest.raises(ConfigError, match=r"environment variable TROUPE_LLM__API_KEY: unknown key"):
        load_config(cwd=tmp_path, environ={"TROUPE_LLM__API_KEY": "sk-nope"})
    with pytest.raises(ConfigError, match=r"unknown section \[nope\]"):
        load_config(cwd=tmp_path, environ={"TROUPE_NOPE__X": "1"})


def test_argument_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"expected section\.key=value"):
        load_config({"model": "x"}, cwd=tmp_path, environ={})


def test_secrets_come_only_from_the_environment(tmp_path: Path) -> None:
    config = load_config({"llm.api_type": "openai"}, cwd=tmp_path, environ={})
    assert api_key(config.llm, {"OPENAI_API_KEY": "sk-env"}) == "sk-env"
    assert api_key(config.llm, {}) is None
    azure = config.with_overrides({"llm.api_type": "azure"})
    assert api_key(azure.llm, {"AZURE_OPENAI_KEY": "az", "OPENAI_API_KEY": "sk"}) == "az"
