"""The LLM call cache: an interface and troupe's content-addressed file store."""

from .base import CallCache, NullCache, cache_key
from .files import FileCallCache

__all__ = ["CallCache", "NullCache", "FileCallCache", "cache_key"]
