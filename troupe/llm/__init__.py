"""The LLM gateway and its types."""

from .errors import (
    LLMAuthError,
    LLMBadRequest,
    LLMError,
    LLMRefusal,
    LLMStructuredOutputError,
    LLMTruncated,
    LLMUnavailable,
)
from .gateway import ChatResult, LLMGateway, Ledger, default_gateway, set_default_gateway
from .types import CallRecord, ChatRequest, RawResponse, Usage

__all__ = [
    "CallRecord",
    "ChatRequest",
    "ChatResult",
    "LLMAuthError",
    "LLMBadRequest",
    "LLMError",
    "LLMGateway",
    "LLMRefusal",
    "LLMStructuredOutputError",
    "LLMTruncated",
    "LLMUnavailable",
    "Ledger",
    "RawResponse",
    "Usage",
    "default_gateway",
    "set_default_gateway",
]
