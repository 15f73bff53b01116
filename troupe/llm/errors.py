"""Typed LLM errors. Each says what happened, at which endpoint, and what to do."""

from __future__ import annotations

from ..errors import TroupeError


class LLMError(TroupeError):
    """Base class of errors from the LLM service."""


class LLMBadRequest(LLMError):
    """The service rejected the request (HTTP 400/404/422): fix the request or the model name."""


class LLMAuthError(LLMError):
    """HTTP 401/403: the key is missing, wrong, or lacks access."""


class LLMRefusal(LLMError):
    """The model or a content filter refused to answer."""


class LLMTruncated(LLMError):
    """The reply was cut off by max_tokens (finish_reason = length)."""


class LLMUnavailable(LLMError):
    """Transient faults (429, 5xx, timeouts, connection errors) persisted through every attempt."""


class LLMStructuredOutputError(LLMError):
    """The reply did not match the requested schema, even after one repair round."""
