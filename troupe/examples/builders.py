"""Builders for TinyTroupe's example people, as in ``tinytroupe.examples``.

Each returns a new, independent TinyPerson loaded from the example file shipped with troupe;
keyword arguments (gateway, config, transcript) go to TinyPerson.
"""

from __future__ import annotations

from typing import Any

from ..agent.person import TinyPerson
from . import example_path


def _build(short_name: str, **kwargs: Any) -> TinyPerson:
    return TinyPerson.load_specification(example_path("agents", short_name), **kwargs)


def create_lisa_the_data_scientist(**kwargs: Any) -> TinyPerson:
    return _build("Lisa", **kwargs)


def create_oscar_the_architect(**kwargs: Any) -> TinyPerson:
    return _build("Oscar", **kwargs)


def create_marcos_the_physician(**kwargs: Any) -> TinyPerson:
    return _build("Marcos", **kwargs)


def create_lila_the_linguist(**kwargs: Any) -> TinyPerson:
    return _build("Lila", **kwargs)


BUILDERS = {
    "lisa": create_lisa_the_data_scientist,
    "oscar": create_oscar_the_architect,
    "marcos": create_marcos_the_physician,
    "lila": create_lila_the_linguist,
}
