"""Example personas, fragments and populations shipped with troupe.

They are TinyTroupe's own sample files (MIT licence, see ``LICENSE-data`` beside them), copied byte
for byte so troupe can prove it reads TinyTroupe's format as it is, and so users have ready-made
people to simulate without writing a persona first.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, get_args

from ..errors import SpecError

ExampleKind = Literal["agents", "fragments", "populations"]

EXAMPLES_DIR: Path = Path(__file__).resolve().parent

# File name patterns per kind: a short name ("Lisa") is tried with these suffixes in order.
_SUFFIXES: dict[str, tuple[str, ...]] = {
    "agents": (".agent.json",),
    "fragments": (".fragment.json", ".agent.fragment.json"),
    "populations": (".json",),
}
_GLOBS: dict[str, str] = {
    "agents": "*.agent.json",
    "fragments": "*.fragment.json",
    "populations": "*.json",
}


def _check_kind(kind: str) -> None:
    """Reject an unknown kind with the list of valid ones (a typo should not look like 'no files')."""
    if kind not in get_args(ExampleKind):
        raise SpecError(
            f"examples: kind: expected one of {', '.join(get_args(ExampleKind))}, got {kind!r}; "
            "use one of those"
        )


def _short_name(kind: str, path: Path) -> str:
    """The name a user would type for ``path`` (its file name without the kind's suffix)."""
    for suffix in sorted(_SUFFIXES[kind], key=len, reverse=True):
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)]
    return path.name


def list_examples(kind: ExampleKind) -> list[Path]:
    """All shipped example files of one kind, sorted by file name."""
    _check_kind(kind)
    return sorted((EXAMPLES_DIR / kind).glob(_GLOBS[kind]), key=lambda p: p.name)


def example_path(kind: ExampleKind, name: str) -> Path:
    """Path of one shipped example, by file name ("Lisa.agent.json") or short name ("Lisa")."""
    _check_kind(kind)
    folder = EXAMPLES_DIR / kind
    for candidate in (name, *(name + suffix for suffix in _SUFFIXES[kind])):
        path = folder / candidate
        if path.is_file():
            return path
    available = ", ".join(_short_name(kind, p) for p in list_examples(kind)) or "none"
    raise SpecError(
        f"examples/{kind}: name: no example named {name!r}; choose one of: {available}"
    )


# TinyTroupe's builder names; its ``_2`` variants build the same people in code, here from the same files.
_BUILDERS = {
    name: name.removesuffix("_2")
    for base in (
        "create_lisa_the_data_scientist",
        "create_oscar_the_architect",
        "create_marcos_the_physician",
        "create_lila_the_linguist",
    )
    for name in (base, base + "_2")
}


def __getattr__(name: str) -> Any:
    """The example builders, as ``tinytroupe.examples`` exports them; loaded on first use.

    ``from troupe.examples import create_lisa_the_data_scientist`` works as in TinyTroupe, while
    ``import troupe.examples`` (used by scenario files) stays free of the agent machinery.
    """
    if name in _BUILDERS:
        from . import builders

        return getattr(builders, _BUILDERS[name])
    raise AttributeError(f"module 'troupe.examples' has no attribute {name!r}")


# ----- TinyTroupe's loaders -----


def load_example_agent_specification(name: str) -> dict[str, Any]:
    """An example agent's specification as a dict (its ``.agent.json``), by short name ("Lisa")."""
    return json.loads(example_path("agents", name).read_text(encoding="utf-8"))


def load_example_fragment_specification(name: str) -> dict[str, Any]:
    """An example fragment's specification as a dict, by short name ("travel_enthusiast")."""
    return json.loads(example_path("fragments", name).read_text(encoding="utf-8"))


def list_example_agents() -> list[str]:
    return [_short_name("agents", p) for p in list_examples("agents")]


def list_example_fragments() -> list[str]:
    return [_short_name("fragments", p) for p in list_examples("fragments")]


__all__ = [
    "EXAMPLES_DIR", "ExampleKind", "example_path", "list_examples", "list_example_agents", "list_example_fragments",
    "load_example_agent_specification", "load_example_fragment_specification", *_BUILDERS,
]
