"""Where older TinyTroupe notebooks import the client switches from (``tinytroupe.openai_utils``)."""

from .clients import force_api_cache, force_api_type

__all__ = ["force_api_cache", "force_api_type"]
