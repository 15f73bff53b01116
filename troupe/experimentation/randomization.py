"""Blinding two options for an A/B question, and un-blinding the answers afterwards.

Agents (like people) prefer the first option they read; presenting control and treatment in a
random order per item, under neutral names, removes that bias. The order for item ``i`` is drawn
from ``(random_seed, i)``, so a rerun blinds every item the same way and the call cache still hits.
"""

from __future__ import annotations

import random
from typing import Any, Sequence


class ABRandomizer:
    """TinyTroupe's ABRandomizer: ``randomize(i, a, b)``, ``derandomize(i, a, b)``, ``derandomize_name(i, name)``."""

    def __init__(
        self,
        real_name_1: str = "control",
        real_name_2: str = "treatment",
        blind_name_a: str = "A",
        blind_name_b: str = "B",
        passtrough_name: Sequence[str] = (),
        random_seed: int = 42,
    ) -> None:
        self.real_name_1 = real_name_1
        self.real_name_2 = real_name_2
        self.blind_name_a = blind_name_a
        self.blind_name_b = blind_name_b
        self.passtrough_name = list(passtrough_name)  # TinyTroupe's spelling, kept for drop-in use
        self.random_seed = random_seed
        self.choices: dict[Any, tuple[int, int]] = {}

    def _swapped(self, i: Any) -> bool:
        return random.Random(f"{self.random_seed}:{i}").random() >= 0.5

    def randomize(self, i: Any, a: Any, b: Any) -> tuple[Any, Any]:
        """(a, b) or (b, a) for item i, seeded; remembered so the answer can be un-blinded."""
        if self._swapped(i):
            self.choices[i] = (1, 0)
            return b, a
        self.choices[i] = (0, 1)
        return a, b

    def _choice(self, i: Any) -> tuple[int, int]:
        if i not in self.choices:
            raise KeyError(f"item {i!r} was never randomized; call randomize({i!r}, a, b) first")
        return self.choices[i]

    def derandomize(self, i: Any, a: Any, b: Any) -> tuple[Any, Any]:
        """The pair as presented for item i, put back in real order (control first)."""
        return (a, b) if self._choice(i) == (0, 1) else (b, a)

    def derandomize_name(self, i: Any, blind_name: str) -> str:
        """The real option behind the blind name an agent chose for item i."""
        swapped = self._choice(i) == (1, 0)
        if blind_name == self.blind_name_a:
            return self.real_name_2 if swapped else self.real_name_1
        if blind_name == self.blind_name_b:
            return self.real_name_1 if swapped else self.real_name_2
        if blind_name in self.passtrough_name:
            return blind_name
        names = [self.blind_name_a, self.blind_name_b, *self.passtrough_name]
        raise ValueError(f"item {i!r}: {blind_name!r} is not a blind name; expected one of {', '.join(map(repr, names))}")
