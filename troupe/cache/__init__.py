"""The LLM call cache: an interface, a backend registry and troupe's content-addressed file store."""

from .base import CallCache, NullCache, cache_key, open_cache, register_backend
from .files import FileCallCache

__all__ = ["CallCache", "FileCallCache", "NullCache", "cache_key", "open_cache", "register_backend"]
