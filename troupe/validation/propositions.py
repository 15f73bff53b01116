"""Ready-made propositions about agents and worlds, named as in ``tinytroupe.validation.propositions``.

Each is a :class:`Proposition` without a target: ``persona_adherence.score(lisa)``. They share
state (the last value and justification), as TinyTroupe's do; ``.copy()`` one to keep results apart.
"""

from __future__ import annotations

from .proposition import Proposition

persona_adherence = Proposition(
    "The agent behaves as its persona says it would: its personality, style, beliefs, behaviours "
    "and skills all show in what it says and does.",
    include_personas=True,
)
hard_persona_adherence = Proposition(
    "Every single action of the agent fits its persona; one action out of character is enough to make this false.",
    include_personas=True,
    double_check=True,
)
self_consistency = Proposition(
    "The agent never contradicts itself: what it says and does now agrees with what it said, did and believed earlier."
)
fluency = Proposition(
    "The agent speaks naturally, like a real person: varied wording, no mechanical repetition, no odd formatting."
)
task_completion = Proposition(
    "The agent completed the task or goal it was given: {{ task_description }}",
    include_personas=True,
)
quiet_recently = Proposition(
    "The agent has been mostly quiet recently: in its last actions it said little or nothing.",
    last_n=10,
)
divergence = Proposition(
    "The agents express different opinions and ideas from each other: they do not simply agree."
)
convergence = Proposition(
    "The agents come to agree with each other: their opinions and ideas move closer together over time."
)

__all__ = [
    "convergence",
    "divergence",
    "fluency",
    "hard_persona_adherence",
    "persona_adherence",
    "quiet_recently",
    "self_consistency",
    "task_completion",
]
