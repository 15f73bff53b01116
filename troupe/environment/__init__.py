"""Environments: TinyWorld, TinySocialNetwork and interventions."""

from .intervention import Intervention
from .social_network import TinySocialNetwork
from .world import TinyWorld, WorldState

__all__ = ["Intervention", "TinySocialNetwork", "TinyWorld", "WorldState"]
