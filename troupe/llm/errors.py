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
    """Transient faults (429, 5xx, timeouts, connection errors) persisted through every attempt.

    The task layer retries these; for the embedded model a read timeout (a busy machine) is one too.
    """


class LLMStructuredOutputError(LLMError):
    """The reply did not match the requested schema, even after one repair round."""


class LLMServerDied(LLMError):
    """The embedded model server this process started has died (exit code or signal, e.g. SIGSEGV).

    Not transient: the same build on the same machine dies the same way, so neither the gateway nor
    the task layer retries it, and troupe does not restart the server. The message names the cause,
    the server's last log lines, its log file and the fix.
    """
